-- The TraceID header of the national CP-IS API, recorded beside the
-- X-Request-ID, so that an access can be matched with the caller's own
-- trace of it. '' when the request carried none.
ALTER TABLE audit_events ADD COLUMN trace_id text NOT NULL DEFAULT '';
