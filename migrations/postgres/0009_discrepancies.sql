-- Discrepancy reports (internal/store/discrepancies.go): a practitioner's
-- report that the register looks wrong for a child, addressed to the
-- safeguarding team of the reporter's own organisation, who mark it
-- resolved. The reporter and the resolver are kept as their tokens said
-- (cpis.Actor), as the audit trail keeps its actors.
CREATE TABLE discrepancies (
    id                         TEXT COLLATE "C" PRIMARY KEY,
    nhs_number                 TEXT COLLATE "C" NOT NULL,
    reason                     TEXT COLLATE "C" NOT NULL,
    note                       TEXT NOT NULL,                -- '' when none
    org_code                   TEXT COLLATE "C" NOT NULL,   -- the organisation addressed
    reporter_kind              TEXT COLLATE "C" NOT NULL,
    reporter_user_id           TEXT COLLATE "C" NOT NULL,
    reporter_name              TEXT NOT NULL,
    reporter_role_profile_id   TEXT NOT NULL,
    reporter_role_code         TEXT NOT NULL,
    reporter_role_name         TEXT NOT NULL,
    reporter_org_code          TEXT COLLATE "C" NOT NULL,
    reporter_org_name          TEXT NOT NULL,
    reporter_activities        TEXT[],
    reported_at                TIMESTAMPTZ NOT NULL,
    -- The resolution: all NULL while the report is open.
    resolver_kind              TEXT COLLATE "C",
    resolver_user_id           TEXT COLLATE "C",
    resolver_name              TEXT,
    resolver_role_profile_id   TEXT,
    resolver_role_code         TEXT,
    resolver_role_name         TEXT,
    resolver_org_code          TEXT COLLATE "C",
    resolver_org_name          TEXT,
    resolver_activities        TEXT[],
    resolved_at                TIMESTAMPTZ,
    CHECK ((resolved_at IS NULL) = (resolver_user_id IS NULL))
);

-- An organisation's work list: open reports first, newest first. A Trust
-- receives a handful a week, so one index serves both orders.
CREATE INDEX discrepancies_org_idx ON discrepancies (org_code, (resolved_at IS NOT NULL), reported_at DESC, id DESC);
