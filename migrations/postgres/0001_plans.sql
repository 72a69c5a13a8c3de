-- Plans: the current version of each plan, and every version ever stored.
--
-- Identifiers and codes use the "C" collation so that ordering (the id
-- tie-break of searches) is byte order whatever the database's locale, as in
-- the SQLite store, and comparisons are cheap.

CREATE TABLE plans (
    id               TEXT COLLATE "C" PRIMARY KEY,
    version          INTEGER NOT NULL CHECK (version >= 1),
    nhs_number       TEXT COLLATE "C" NOT NULL,
    plan_type        TEXT COLLATE "C" NOT NULL CHECK (plan_type IN ('CPP', 'CLA', 'UCPP')),
    start_date       DATE NOT NULL,
    end_date         DATE NOT NULL,
    la_code          TEXT COLLATE "C" NOT NULL,
    la_name          TEXT NOT NULL,
    emergency_phone  TEXT NOT NULL,
    office_phone     TEXT NOT NULL DEFAULT '',
    birth_date       DATE,                          -- NULL for a UCPP
    entered_in_error BOOLEAN NOT NULL DEFAULT false,
    last_updated     TIMESTAMPTZ NOT NULL,
    -- The last day health users may see the plan, computed by the domain
    -- (cpis.Plan.DisplayUntil) when the version is written, so that the SOP's
    -- display windows live in one place and searches can compare a column.
    display_until    DATE NOT NULL
);

-- Health users look plans up by NHS number: the hot path. A patient has a
-- handful of plans, so the ordering is a sort of a few rows.
CREATE INDEX plans_nhs_number_idx ON plans (nhs_number);

-- An LA lists or polls its own plans, newest (or oldest) change first.
CREATE INDEX plans_la_code_idx ON plans (la_code, last_updated, id);

CREATE TABLE plan_versions (
    id               TEXT COLLATE "C" NOT NULL,
    version          INTEGER NOT NULL CHECK (version >= 1),
    nhs_number       TEXT COLLATE "C" NOT NULL,
    plan_type        TEXT COLLATE "C" NOT NULL CHECK (plan_type IN ('CPP', 'CLA', 'UCPP')),
    start_date       DATE NOT NULL,
    end_date         DATE NOT NULL,
    la_code          TEXT COLLATE "C" NOT NULL,
    la_name          TEXT NOT NULL,
    emergency_phone  TEXT NOT NULL,
    office_phone     TEXT NOT NULL DEFAULT '',
    birth_date       DATE,
    entered_in_error BOOLEAN NOT NULL DEFAULT false,
    last_updated     TIMESTAMPTZ NOT NULL,
    display_until    DATE NOT NULL,
    -- The X-Request-ID of the write that stored this version (NULL when the
    -- request had none), so that a retried write is answered with what the
    -- first one stored instead of writing again.
    request_id       TEXT COLLATE "C",
    PRIMARY KEY (id, version)
);

-- One write per request id per LA: a concurrent retry fails on this index and
-- is then answered as a replay. The writing LA is always the plan's LA.
CREATE UNIQUE INDEX plan_versions_request_idx ON plan_versions (la_code, request_id)
    WHERE request_id IS NOT NULL;
