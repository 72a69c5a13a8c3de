-- Subscriptions (internal/store/subscriptions.go): each system's standing
-- request for the events of a topic, with where its delivery stands. The
-- delivery state is here, not in a process: a replica killed mid-delivery
-- loses nothing, and replicas share the work, each subscription delivered
-- by whichever holds its lease.
CREATE TABLE subscriptions (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    -- The owner: the subscribing system, as its token said (cpis.Actor).
    owner_kind            TEXT COLLATE "C" NOT NULL,
    owner_user_id         TEXT COLLATE "C" NOT NULL,
    owner_name            TEXT NOT NULL,
    owner_role_profile_id TEXT NOT NULL,
    owner_role_code       TEXT NOT NULL,
    owner_role_name       TEXT NOT NULL,
    owner_org_code        TEXT COLLATE "C" NOT NULL,
    owner_org_name        TEXT NOT NULL,
    owner_activities      TEXT[],
    topic                 TEXT COLLATE "C" NOT NULL,
    la_code               TEXT COLLATE "C" NOT NULL,   -- '' for a health system's plan-change
    nhs_number            TEXT COLLATE "C" NOT NULL,   -- '' for the ASN topic
    endpoint              TEXT NOT NULL,
    headers               TEXT[],                      -- "Name: value": the receiver's credentials
    content               TEXT COLLATE "C" NOT NULL,
    status                TEXT COLLATE "C" NOT NULL,
    error                 TEXT NOT NULL,
    reason                TEXT NOT NULL,
    heartbeat_us          BIGINT NOT NULL,             -- microseconds; 0: no heartbeat
    timeout_us            BIGINT NOT NULL,             -- microseconds
    max_count             INTEGER NOT NULL,
    end_at                TIMESTAMPTZ,                 -- NULL: no end
    created               TIMESTAMPTZ NOT NULL,
    updated               TIMESTAMPTZ NOT NULL,

    -- Delivery state (store.DeliveryState). The subscription's events are
    -- those after start_position, the log's head when it was created;
    -- matching has numbered those up to scanned, numbered of them.
    start_position        BIGINT NOT NULL,
    scanned               BIGINT NOT NULL,
    numbered              BIGINT NOT NULL DEFAULT 0,
    delivered             BIGINT NOT NULL DEFAULT 0,
    handshake             BOOLEAN NOT NULL DEFAULT false,
    failures              INTEGER NOT NULL DEFAULT 0,
    failing_since         TIMESTAMPTZ,
    next_attempt          TIMESTAMPTZ NOT NULL,
    last_sent             TIMESTAMPTZ,
    last_error            TEXT NOT NULL DEFAULT '',
    -- The claimer delivering it (store.Claim): a token, and when another
    -- may take it over.
    lease                 TEXT COLLATE "C",
    lease_until           TIMESTAMPTZ,
    CHECK ((lease IS NULL) = (lease_until IS NULL))
);

-- Claims: the subscriptions that may be due, earliest attempt first. Only
-- those requested or active are ever claimed, so only they are indexed.
CREATE INDEX subscriptions_claim_idx ON subscriptions (next_attempt, id)
    WHERE status IN ('requested', 'active');

-- A system's own subscriptions, oldest first (GET /Subscription).
CREATE INDEX subscriptions_owner_idx ON subscriptions (owner_org_code, owner_user_id, created, id);

-- Each subscription's numbering of the log's events (eventNumber): what
-- was or will be delivered, and what $events replays. Retention removes the
-- numbers of the events it removes; deleting a subscription removes its own.
CREATE TABLE subscription_event (
    subscription_id TEXT COLLATE "C" NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    number          BIGINT NOT NULL,
    position        BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, number)
);

-- Retention: the numbers of the oldest events.
CREATE INDEX subscription_event_position_idx ON subscription_event (position);

-- Matching scans the log after a position, for one LA's ASNs or one
-- child's plan versions. Neither index of 0007 serves it: the LA's is
-- ordered by stamp, and the child's holds ASNs only. The kind is each
-- index's predicate, written as a literal by the store's queries.
CREATE INDEX event_log_asn_match_idx ON event_log (la_code, position) WHERE kind = 'asn';
CREATE INDEX event_log_plan_match_idx ON event_log (nhs_number, position) WHERE kind = 'plan';
