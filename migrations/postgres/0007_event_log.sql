-- The event log (internal/store/events.go): every plan version stored and
-- every Access to Service Notification sent, in the order their
-- transactions committed. The change feeds and the subscriptions read it.
-- Append-only: only retention deletes events, oldest first.
--
-- A position is given at commit, not before: every transaction that writes
-- events advances event_head as its last statement, and the row lock that
-- UPDATE takes is held until its commit is visible. So positions follow
-- commit order, and a reader that sees position p has seen every lower one.

CREATE TABLE event_log (
    position     BIGINT PRIMARY KEY,
    -- The feed's clock: the greatest of the writer's own time (the plan's
    -- last_updated, the ASN's sent) and one microsecond after the previous
    -- transaction's stamp, so it never decreases along position. The events
    -- of one transaction share it.
    stamp        TIMESTAMPTZ NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    la_code      TEXT COLLATE "C" NOT NULL,   -- the plan's LA, or the ASN's recipient
    nhs_number   TEXT COLLATE "C" NOT NULL,
    -- kind 'plan': the version stored, read back from plan_versions.
    plan_id      TEXT COLLATE "C" NOT NULL DEFAULT '',
    plan_version INTEGER NOT NULL DEFAULT 0,
    -- kind 'asn': the notification, all of cpis.ASN but its coalescing
    -- window, which is the sender's setting and not part of what was sent.
    asn_id       TEXT COLLATE "C" NOT NULL DEFAULT '',
    audit_id     TEXT COLLATE "C" NOT NULL DEFAULT '',
    sent         TIMESTAMPTZ,
    plan_ids     TEXT[] COLLATE "C",
    org_code     TEXT COLLATE "C" NOT NULL DEFAULT '',
    org_name     TEXT NOT NULL DEFAULT '',
    user_name    TEXT NOT NULL DEFAULT '',
    role_name    TEXT NOT NULL DEFAULT '',
    CHECK (kind = 'plan' AND plan_id <> '' AND plan_version >= 1
        OR kind = 'asn' AND asn_id <> '' AND sent IS NOT NULL)
);

-- An LA's feed of one kind, oldest or newest first from a key (GET
-- /Flag/_history, GET /Communication).
CREATE INDEX event_log_la_idx ON event_log (la_code, kind, stamp, position);

-- The whole log in order (a feed of every LA), and retention, which deletes
-- the oldest events.
CREATE INDEX event_log_stamp_idx ON event_log (stamp, position);

-- An ASN by its id (GET /Communication/{id}); ids are server-made UUIDs.
-- Its predicate is asn_id <> '' (only ASNs have one), not kind = 'asn':
-- then the coalescing look-up, which names the kind and not the id, can
-- use no index but event_log_asn_coalesce_idx. With the kind, a planner
-- whose statistics were taken while the log held few ASNs read all of
-- them through this index at every look-up (15 ms at 10,000 ASNs, while
-- holding the head's lock), instead of probing the coalescing index.
CREATE UNIQUE INDEX event_log_asn_idx ON event_log (asn_id) WHERE asn_id <> '';

-- Coalescing: the ASNs about one child from one organisation to one LA, by
-- the time they were sent (store.Store.AppendAudit). Also an LA's ASNs
-- about one child.
CREATE INDEX event_log_asn_coalesce_idx ON event_log (nhs_number, la_code, org_code, sent)
    WHERE kind = 'asn';

-- The last position given and its stamp: one row, whose row lock orders
-- the commits of every transaction writing events. stamp is NULL until the
-- first event.
CREATE TABLE event_head (
    one      BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    position BIGINT NOT NULL,
    stamp    TIMESTAMPTZ
);

-- The versions stored before the log existed, each an event, in the order
-- they were written as far as it is known, stamped when they were. Servers
-- of an earlier release log nothing: versions they store after this
-- migration, during a rolling upgrade, have no event.
INSERT INTO event_log (position, stamp, kind, la_code, nhs_number, plan_id, plan_version)
SELECT row_number() OVER (ORDER BY last_updated, id, version), last_updated, 'plan', la_code, nhs_number, id, version
FROM plan_versions;

INSERT INTO event_head (position, stamp) SELECT count(*), max(stamp) FROM event_log;
