-- The server instance that recorded each audit event (its base URL), so that the
-- trail shows which replica served a read when several share one database.
ALTER TABLE audit_events ADD COLUMN source TEXT NOT NULL DEFAULT '';
