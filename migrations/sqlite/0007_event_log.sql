-- The event log (internal/store/events.go): every plan version stored and
-- every ASN sent, in the order their transactions committed. Append-only
-- but for retention, which removes the oldest. Instants are INTEGER
-- microseconds since the Unix epoch, UTC, as everywhere in this store.
--
-- position is the rowid: the table is stored in commit order, and a
-- reader that follows it reads pages in order. Positions come from
-- event_head, never from SQLite's choice of rowid, which would reuse the
-- positions of a log emptied by retention.
--
-- A plan event keeps only the key of its version (plan_id, plan_version):
-- the version itself is read from plan_versions, where it is kept anyway.
-- An ASN event keeps the cpis.ASN fields (not its coalescing window, which
-- is only applied when it is stored); plan_ids is a JSON array, NULL when
-- empty. The columns of the other kind are NULL.
CREATE TABLE event_log (
    position     INTEGER PRIMARY KEY,
    stamp        INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('plan', 'asn')),
    la_code      TEXT NOT NULL,
    nhs_number   TEXT NOT NULL,
    plan_id      TEXT,
    plan_version INTEGER,
    asn_id       TEXT,
    audit_id     TEXT,
    sent         INTEGER,
    plan_ids     TEXT,
    org_code     TEXT,
    org_name     TEXT,
    user_name    TEXT,
    role_name    TEXT,
    CHECK (kind = 'plan' AND plan_id IS NOT NULL AND plan_version IS NOT NULL
        OR kind = 'asn' AND asn_id IS NOT NULL AND sent IS NOT NULL AND org_code IS NOT NULL)
) STRICT;

-- Each index costs a page write per commit that adds an event, so there
-- are as few as the queries allow.
--
-- An LA's feed of one kind (its plans' changes, its ASNs), either way
-- round from a stamp: the rowid ends every index entry, so the entries of
-- one LA and kind are in (stamp, position) order and no page is sorted.
CREATE INDEX event_log_la_idx ON event_log (la_code, kind, stamp);

-- The whole log from a stamp (a poll of every LA's events, and retention).
-- Stamps only grow, so new entries land on the index's last page.
CREATE INDEX event_log_stamp_idx ON event_log (stamp);

-- An ASN by id (the Communication's read). Unique: an id names one ASN.
CREATE UNIQUE INDEX event_log_asn_idx ON event_log (asn_id) WHERE kind = 'asn';

-- Coalescing (cpis.ASN.CoalescesWith): was an ASN for this child, LA and
-- organisation sent within the window? One probe per ASN stored.
CREATE INDEX event_log_coalesce_idx ON event_log (nhs_number, la_code, org_code, sent) WHERE kind = 'asn';

-- The newest position and stamp ever given, also once retention has
-- removed their events: the next transaction's events follow them. One
-- row; SQLite's one writer makes reading and advancing it atomic.
CREATE TABLE event_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL,
    stamp    INTEGER NOT NULL
) STRICT;

-- Every plan version stored before the log existed is an event, in the
-- order they were written, stamped with that time.
INSERT INTO event_log (position, stamp, kind, la_code, nhs_number, plan_id, plan_version)
SELECT ROW_NUMBER() OVER (ORDER BY last_updated, id, version), last_updated, 'plan', la_code, nhs_number, id, version
FROM plan_versions
ORDER BY last_updated, id, version;

INSERT INTO event_head (id, position, stamp)
SELECT 1, COALESCE(MAX(position), 0), COALESCE(MAX(stamp), 0) FROM event_log;
