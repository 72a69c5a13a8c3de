-- The audit trail: one row per audited interaction with one patient's plans.
-- Append-only. Instants are INTEGER microseconds since the Unix epoch, UTC;
-- lists (activities, plan ids, LA codes) are JSON arrays, NULL when empty.
--
-- Every index on a scattered key (NHS number, organisation, user) costs a
-- page write per record at commit and again at checkpoint, so there are as
-- few as the queries allow; the id has none (nothing looks a record up by
-- id, and it is a random UUID, the costliest key to index).

CREATE TABLE audit_events (
    id                    TEXT NOT NULL CHECK (id <> ''),
    recorded              INTEGER NOT NULL,
    action                TEXT NOT NULL,
    interaction           TEXT NOT NULL,
    outcome               INTEGER NOT NULL,
    actor_kind            TEXT NOT NULL,
    actor_user_id         TEXT NOT NULL,
    actor_name            TEXT NOT NULL,
    actor_role_profile_id TEXT NOT NULL,
    actor_role_code       TEXT NOT NULL,
    actor_role_name       TEXT NOT NULL,
    actor_org_code        TEXT NOT NULL,
    actor_org_name        TEXT NOT NULL,
    actor_activities      TEXT,
    nhs_number            TEXT NOT NULL,   -- '' when the record concerns no one patient
    plan_ids              TEXT,
    query                 TEXT NOT NULL,
    request_id            TEXT NOT NULL,
    access                INTEGER NOT NULL CHECK (access IN (0, 1)),
    unscheduled           INTEGER NOT NULL CHECK (unscheduled IN (0, 1)),
    la_codes              TEXT
) STRICT;

-- "Child Protection Information Previously Viewed By" (nhs_number = ? AND
-- access = 1, newest first) reads this in index order and stops after 25;
-- a search of one patient's whole trail uses it too, sorting a few rows.
CREATE INDEX audit_events_patient_idx ON audit_events (nhs_number, access, recorded, id);

-- Information governance audits: what an organisation or a user looked at,
-- and the whole trail by time. The id in each is the tie-break of the order.
CREATE INDEX audit_events_org_idx ON audit_events (actor_org_code, recorded, id);
CREATE INDEX audit_events_user_idx ON audit_events (actor_user_id, recorded, id);
CREATE INDEX audit_events_recorded_idx ON audit_events (recorded, id);
