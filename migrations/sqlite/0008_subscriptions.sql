-- Subscriptions (internal/store/subscriptions.go): each system's standing
-- request for the events of a topic, with where its delivery stands, so
-- that a restart loses nothing. Instants are INTEGER microseconds since the
-- Unix epoch, UTC, NULL where the Go value is the zero time; durations are
-- INTEGER microseconds; lists are JSON arrays, NULL when empty.
CREATE TABLE subscriptions (
    id                    TEXT PRIMARY KEY,
    -- The owner: the subscribing system, as its token said (cpis.Actor).
    owner_kind            TEXT NOT NULL,
    owner_user_id         TEXT NOT NULL,
    owner_name            TEXT NOT NULL,
    owner_role_profile_id TEXT NOT NULL,
    owner_role_code       TEXT NOT NULL,
    owner_role_name       TEXT NOT NULL,
    owner_org_code        TEXT NOT NULL,
    owner_org_name        TEXT NOT NULL,
    owner_activities      TEXT,
    topic                 TEXT NOT NULL,
    la_code               TEXT NOT NULL,   -- '' for a health system's plan-change
    nhs_number            TEXT NOT NULL,   -- '' for the ASN topic
    endpoint              TEXT NOT NULL,
    headers               TEXT,            -- "Name: value": the receiver's credentials
    content               TEXT NOT NULL,
    status                TEXT NOT NULL,
    error                 TEXT NOT NULL,
    reason                TEXT NOT NULL,
    heartbeat_us          INTEGER NOT NULL,
    timeout_us            INTEGER NOT NULL,
    max_count             INTEGER NOT NULL,
    end_at                INTEGER,
    created               INTEGER NOT NULL,
    updated               INTEGER NOT NULL,

    -- Delivery state (store.DeliveryState). The subscription's events are
    -- those after start_position, the log's head when it was created;
    -- matching has numbered those up to scanned, numbered of them.
    start_position        INTEGER NOT NULL,
    scanned               INTEGER NOT NULL,
    numbered              INTEGER NOT NULL DEFAULT 0,
    delivered             INTEGER NOT NULL DEFAULT 0,
    handshake             INTEGER NOT NULL DEFAULT 0,
    failures              INTEGER NOT NULL DEFAULT 0,
    failing_since         INTEGER,
    next_attempt          INTEGER NOT NULL,
    last_sent             INTEGER,
    last_error            TEXT NOT NULL DEFAULT '',
    -- The claimer delivering it (store.Claim): a token, and when another
    -- may take it over.
    lease                 TEXT,
    lease_until           INTEGER,
    CHECK ((lease IS NULL) = (lease_until IS NULL))
) STRICT;

-- Claims: the subscriptions that may be due, earliest attempt first. Only
-- those requested or active are ever claimed, so only they are indexed.
CREATE INDEX subscriptions_claim_idx ON subscriptions (next_attempt, id)
    WHERE status IN ('requested', 'active');

-- A system's own subscriptions, oldest first (GET /Subscription).
CREATE INDEX subscriptions_owner_idx ON subscriptions (owner_org_code, owner_user_id, created, id);

-- Each subscription's numbering of the log's events (eventNumber): what
-- was or will be delivered, and what $events replays. Retention removes the
-- numbers of the events it removes; deleting a subscription removes its
-- own (the writer runs with foreign_keys on).
CREATE TABLE subscription_event (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, number)
) STRICT, WITHOUT ROWID;

-- Retention: the numbers of the oldest events.
CREATE INDEX subscription_event_position_idx ON subscription_event (position);

-- Matching scans the log after a position, for one LA's ASNs or one
-- child's plan versions, in position order. event_log_la_idx is ordered by
-- stamp, and the coalescing index holds ASNs only.
CREATE INDEX event_log_asn_match_idx ON event_log (la_code, position) WHERE kind = 'asn';
CREATE INDEX event_log_plan_match_idx ON event_log (nhs_number, position) WHERE kind = 'plan';
