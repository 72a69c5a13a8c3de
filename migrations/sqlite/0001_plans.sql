-- Plans: every version ever stored, and the current version of each plan.
--
-- Dates are TEXT YYYY-MM-DD, which sort and compare as dates; instants are
-- INTEGER microseconds since the Unix epoch, UTC. STRICT makes SQLite refuse
-- a value of the wrong type instead of storing it.

CREATE TABLE plan_versions (
    id               TEXT NOT NULL,
    version          INTEGER NOT NULL CHECK (version >= 1),
    nhs_number       TEXT NOT NULL,
    plan_type        TEXT NOT NULL CHECK (plan_type IN ('CPP', 'CLA', 'UCPP')),
    start_date       TEXT NOT NULL,
    end_date         TEXT NOT NULL,
    la_code          TEXT NOT NULL,
    la_name          TEXT NOT NULL,
    emergency_phone  TEXT NOT NULL,
    office_phone     TEXT NOT NULL DEFAULT '',
    birth_date       TEXT,                          -- NULL for a UCPP
    entered_in_error INTEGER NOT NULL DEFAULT 0 CHECK (entered_in_error IN (0, 1)),
    last_updated     INTEGER NOT NULL,
    -- The last day health users may see the plan, computed by the domain
    -- (cpis.Plan.DisplayUntil) when the version is written, so that the SOP's
    -- display windows live in one place and a search compares a column.
    display_until    TEXT NOT NULL,
    -- The X-Request-ID of the write that stored this version (NULL when the
    -- request had none, and for deletes), so that a retried write is answered
    -- with what the first one stored instead of writing again.
    request_id       TEXT,
    PRIMARY KEY (id, version)
) STRICT, WITHOUT ROWID;

-- One write per request id per LA. The writing LA is always the plan's LA.
CREATE UNIQUE INDEX plan_versions_request_idx ON plan_versions (la_code, request_id)
    WHERE request_id IS NOT NULL;

-- The current version of each plan, copied whole so that searches read one
-- row per plan and never join. Clustered by NHS number, the hot path: a
-- health user's search reads one patient's plans from one or two adjacent
-- pages, with no index-then-table lookups.
CREATE TABLE plans (
    nhs_number       TEXT NOT NULL,
    id               TEXT NOT NULL UNIQUE,
    version          INTEGER NOT NULL CHECK (version >= 1),
    plan_type        TEXT NOT NULL CHECK (plan_type IN ('CPP', 'CLA', 'UCPP')),
    start_date       TEXT NOT NULL,
    end_date         TEXT NOT NULL,
    la_code          TEXT NOT NULL,
    la_name          TEXT NOT NULL,
    emergency_phone  TEXT NOT NULL,
    office_phone     TEXT NOT NULL DEFAULT '',
    birth_date       TEXT,
    entered_in_error INTEGER NOT NULL DEFAULT 0 CHECK (entered_in_error IN (0, 1)),
    last_updated     INTEGER NOT NULL,
    display_until    TEXT NOT NULL,
    PRIMARY KEY (nhs_number, id),
    FOREIGN KEY (id, version) REFERENCES plan_versions (id, version)
) STRICT, WITHOUT ROWID;

-- An LA lists or polls its own plans, newest (or oldest) change first.
CREATE INDEX plans_la_code_idx ON plans (la_code, last_updated, id);
