-- The digest of the import line that wrote each plan's current version
-- (store.Version.Digest: opaque here, a hex SHA-256 of the line's bytes
-- computed by the register), so that a re-sent file's unchanged lines can
-- be recognised without parsing them. '' for a version any other write
-- stored, and for plans stored before this migration. Only the current row
-- carries it: the look-up is "which of these lines wrote a plan as it now
-- is", which no older version can answer.
ALTER TABLE plans ADD COLUMN source_digest TEXT NOT NULL DEFAULT '';

-- The look-up of an LA's live plans by digest (store.WriteTx.ByDigest), a
-- probe per line of an import chunk. Not unique: a digest is a cache key,
-- and the store refuses no write for it.
CREATE INDEX plans_la_digest_idx ON plans (la_code, source_digest)
    WHERE source_digest <> '' AND entered_in_error = 0;
