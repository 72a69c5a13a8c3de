-- The audit trail: one row per audited interaction with one patient's plans.
--
-- Partitioned by month of `recorded` (UTC) so that retention drops whole
-- partitions instead of deleting rows. Monthly partitions are named
-- audit_events_yYYYYmMM and are created ahead of time by the store
-- (EnsureAuditPartitions, run by `cpisctl migrate` and periodically by the
-- server); the DEFAULT partition catches anything outside them, so an insert
-- never fails for want of a partition.
--
-- There is no primary key, and unlike the SQLite schema no unique id: a
-- unique index on a partitioned table must include the partition key, which
-- would make it (id, recorded), and nothing looks a record up by id. Ids are
-- server-made UUIDs. The table is append-only. Lists are arrays, NULL for a
-- nil slice and '{}' for an empty one, so records read back exactly.

CREATE TABLE audit_events (
    id                    TEXT COLLATE "C" NOT NULL,
    recorded              TIMESTAMPTZ NOT NULL,
    action                TEXT NOT NULL,
    interaction           TEXT NOT NULL,
    outcome               INTEGER NOT NULL,
    actor_kind            TEXT NOT NULL,
    actor_user_id         TEXT COLLATE "C" NOT NULL,
    actor_name            TEXT NOT NULL,
    actor_role_profile_id TEXT NOT NULL,
    actor_role_code       TEXT NOT NULL,
    actor_role_name       TEXT NOT NULL,
    actor_org_code        TEXT COLLATE "C" NOT NULL,
    actor_org_name        TEXT NOT NULL,
    actor_activities      TEXT[],
    nhs_number            TEXT COLLATE "C" NOT NULL,   -- '' when the record concerns no one patient
    plan_ids              TEXT[],
    query                 TEXT NOT NULL,
    request_id            TEXT NOT NULL,
    access                BOOLEAN NOT NULL,
    unscheduled           BOOLEAN NOT NULL,
    la_codes              TEXT[]
) PARTITION BY RANGE (recorded);

CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

-- "Child Protection Information Previously Viewed By": the newest accesses to
-- one NHS number. Partial, because only health users' views are accesses; the
-- order matches the query's ORDER BY so each partition is read in index
-- order and merged, stopping after the first 25.
CREATE INDEX audit_events_access_idx ON audit_events (nhs_number, recorded DESC, id DESC)
    WHERE access;

-- Information governance audits: who looked at a patient, what an
-- organisation or a user looked at, over a period; and the whole trail by
-- time, newest first, a page at a time. As in the SQLite schema.
CREATE INDEX audit_events_patient_idx ON audit_events (nhs_number, recorded);
CREATE INDEX audit_events_org_idx ON audit_events (actor_org_code, recorded);
CREATE INDEX audit_events_user_idx ON audit_events (actor_user_id, recorded);
CREATE INDEX audit_events_recorded_idx ON audit_events (recorded);
