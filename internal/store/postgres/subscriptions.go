package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Subscriptions and their delivery state (store/subscriptions.go, migration
// 0008). Work on one subscription is ordered by its row's lock: matching
// takes it FOR UPDATE for its transaction, a claim takes it with SKIP
// LOCKED (so claimers on any replica never wait for each other nor lease
// one subscription twice), and the other writes are single statements.

// subscriptionsPKey is the index a taken subscription id violates.
const subscriptionsPKey = "subscriptions_pkey"

// subscriptionColumns are the columns of a cpis.Subscription, in the order
// of subscriptionArgs; stateColumns those of its store.DeliveryState.
const (
	subscriptionColumns = `id, owner_kind, owner_user_id, owner_name, owner_role_profile_id, owner_role_code,
	owner_role_name, owner_org_code, owner_org_name, owner_activities, topic, la_code, nhs_number, endpoint,
	headers, content, status, error, reason, heartbeat_us, timeout_us, max_count, end_at, created, updated`
	stateColumns = `start_position, scanned, numbered, delivered, handshake, failures, failing_since,
	next_attempt, last_sent, last_error`
	recordColumns = subscriptionColumns + ", " + stateColumns
)

// The statements of subscriptions. $24 is created in subscriptionArgs: a
// new subscription is due at once. Its head is read in the INSERT's
// snapshot, so every event committed after that snapshot, the only ones
// it does not see, has a later position (events.go).
const (
	insertSubscription = `INSERT INTO subscriptions (` + subscriptionColumns + `, start_position, scanned, next_attempt)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
			$23, $24, $25, (SELECT position FROM event_head), (SELECT position FROM event_head), $24)
		RETURNING ` + recordColumns
	selectSubscription = `SELECT ` + recordColumns + ` FROM subscriptions WHERE id = $1`
	ownerSubscriptions = `SELECT ` + recordColumns + ` FROM subscriptions
		WHERE owner_org_code = $1 AND owner_user_id = $2 ORDER BY created, id`
	// updateSubscription: $1 the id, $2 to $12 what the owner may change,
	// $13 resume, $14 the handshake to resume with.
	updateSubscription = `UPDATE subscriptions SET endpoint = $2, headers = $3, content = $4, status = $5,
			error = $6, reason = $7, heartbeat_us = $8, timeout_us = $9, max_count = $10, end_at = $11, updated = $12,
			failures = CASE WHEN $13 THEN 0 ELSE failures END,
			failing_since = CASE WHEN $13 THEN NULL ELSE failing_since END,
			last_error = CASE WHEN $13 THEN '' ELSE last_error END,
			next_attempt = CASE WHEN $13 THEN $12 ELSE next_attempt END,
			handshake = CASE WHEN $13 THEN $14 ELSE handshake END,
			lease = NULL, lease_until = NULL
		WHERE id = $1
		RETURNING ` + recordColumns
	deleteSubscription = `DELETE FROM subscriptions WHERE id = $1`
	backlog            = `SELECT topic, sum(numbered - delivered)::bigint FROM subscriptions
		WHERE status <> 'off' GROUP BY topic`

	// lockSubscription serializes matching per subscription, across
	// replicas, and reads what it starts from once it holds the lock.
	lockSubscription = `SELECT topic, la_code, nhs_number, scanned, numbered FROM subscriptions
		WHERE id = $1 FOR UPDATE`

	// claimSubscriptions leases the due subscriptions: $1 the lease, $2
	// its end, $3 now, $4 the limit. Rows another claimer is leasing are
	// skipped, not waited for; a row that changed since the snapshot is
	// checked again as it now is before it is locked. The rows chosen are
	// then updated by primary key, which "= ANY" of an array, unlike "IN",
	// makes the planner probe rather than join with a scan of the table.
	claimSubscriptions = `UPDATE subscriptions SET lease = $1, lease_until = $2
		WHERE id = ANY(ARRAY(SELECT id FROM subscriptions s
			WHERE status IN ('requested', 'active') AND next_attempt <= $3
				AND (lease_until IS NULL OR lease_until <= $3)
				AND (NOT handshake OR numbered > delivered OR ` + unscannedMatch + `
					OR heartbeat_us > 0 AND greatest(created, last_sent) + heartbeat_us * interval '1 microsecond' <= $3)
			ORDER BY next_attempt, id LIMIT $4
			FOR UPDATE SKIP LOCKED))
		RETURNING ` + recordColumns

	// recordDelivery writes a lease holder's progress: $1 the id, $2 the
	// lease, $3 to $9 the state, $10 the lease's new end (NULL releases
	// it), $11 and $12 the status and error. Its first column says whether
	// it wrote, the second whether the subscription exists.
	recordDelivery = `WITH u AS (
		UPDATE subscriptions SET delivered = greatest(delivered, $3), handshake = $4, failures = $5,
			failing_since = $6, next_attempt = $7, last_sent = $8, last_error = $9,
			lease = CASE WHEN $10::timestamptz IS NULL THEN NULL ELSE lease END, lease_until = $10,
			status = CASE WHEN $11 <> '' AND status IN ('requested', 'active') THEN $11 ELSE status END,
			error = CASE WHEN $11 <> '' AND status IN ('requested', 'active') THEN $12 ELSE error END
		WHERE id = $1 AND lease = $2
		RETURNING 1)
	SELECT EXISTS (SELECT FROM u), EXISTS (SELECT FROM subscriptions WHERE id = $1)`

	// subscriptionEvents reads numbered events with the plan versions they
	// stored: $1 the subscription, $2 and $3 the numbers' bounds, $4 the
	// limit. Events retention removed have no row in event_log to join.
	subscriptionEvents = `SELECT se.number, ` + eventColumns + ` FROM subscription_event se
		JOIN event_log e ON e.position = se.position
		LEFT JOIN plan_versions v ON v.id = e.plan_id AND v.version = e.plan_version
		WHERE se.subscription_id = $1 AND se.number >= $2 AND se.number <= $3
		ORDER BY se.number LIMIT $4`
)

// unscannedMatch says, of subscription s, that an event matching it
// committed after its scan: an index probe of the topic's partial index
// (migration 0008), so a subscription none of whose events came is not
// claimed, however busy the log.
const unscannedMatch = `(s.topic = '` + string(cpis.TopicASN) + `' AND EXISTS (SELECT FROM event_log e
		WHERE e.kind = 'asn' AND e.la_code = s.la_code AND e.position > s.scanned)
	OR s.topic = '` + string(cpis.TopicPlanChange) + `' AND EXISTS (SELECT FROM event_log e
		WHERE e.kind = 'plan' AND e.nhs_number = s.nhs_number AND e.position > s.scanned
			AND (s.la_code = '' OR e.la_code = s.la_code)))`

// Topic filters of matchEvents: the kinds are literals, each the predicate
// of the partial index the scan reads (migration 0008).
const (
	asnFilter      = `e.kind = 'asn' AND e.la_code = $5`
	planFilter     = `e.kind = 'plan' AND e.nhs_number = $5`
	planOfLAFilter = planFilter + ` AND e.la_code = $6`
)

// maxMatches is the most events one MatchSubscriptionEvents may number.
const maxMatches = 1000

// matchSQL is the statement that numbers a subscription's events once its
// row is locked: $1 the id, $2 the limit, $3 and $4 where it stands
// (scanned, numbered), then the filter's parameters. The head is read in
// the statement's own snapshot, so every position up to it is visible to
// the scan: a scan that ends below the limit has seen every event up to
// the head, and scanned moves there. The scan reads the topic's index
// from the position scanned: a subscription's run costs what it numbers.
func matchSQL(filter string) string {
	return `WITH h AS (SELECT position FROM event_head),
	m AS (SELECT position, row_number() OVER (ORDER BY position) AS r FROM (
		SELECT e.position FROM event_log e
		WHERE ` + filter + ` AND e.position > $3 AND e.position <= (SELECT position FROM h)
		ORDER BY e.position LIMIT $2) e),
	n AS (INSERT INTO subscription_event (subscription_id, number, position)
		SELECT $1, $4 + m.r, m.position FROM m)
	UPDATE subscriptions SET numbered = $4 + (SELECT count(*) FROM m),
		scanned = CASE WHEN (SELECT count(*) FROM m) < $2 THEN greatest($3, (SELECT position FROM h))
			ELSE (SELECT max(position) FROM m) END
	WHERE id = $1
	RETURNING ` + stateColumns
}

// CreateSubscription stores s with a fresh delivery state.
func (s *Store) CreateSubscription(ctx context.Context, sub cpis.Subscription) (store.SubscriptionRecord, error) {
	const op = "postgres.CreateSubscription"
	if sub.ID == "" {
		return store.SubscriptionRecord{}, cpis.E(op, cpis.Invalid, "a subscription needs an id")
	}
	r, err := scanRecord(s.pool.QueryRow(ctx, insertSubscription, subscriptionArgs(sub)...))
	if uniqueViolation(err, subscriptionsPKey) {
		return store.SubscriptionRecord{}, cpis.E(op, cpis.Conflict, "a subscription with this id is already stored")
	}
	return r, dbError(op, err)
}

// Subscription returns subscription id.
func (s *Store) Subscription(ctx context.Context, id string) (store.SubscriptionRecord, error) {
	const op = "postgres.Subscription"
	r, err := scanRecord(s.pool.QueryRow(ctx, selectSubscription, id))
	return r, recordError(op, err)
}

// SubscriptionsOf returns o's subscriptions, oldest first.
func (s *Store) SubscriptionsOf(ctx context.Context, o store.Owner) ([]store.SubscriptionRecord, error) {
	const op = "postgres.SubscriptionsOf"
	recs, err := queryAll(ctx, s, scanRecord, ownerSubscriptions, o.OrgCode, o.ClientID)
	if err != nil {
		return nil, dbError(op, err)
	}
	return recs, nil
}

// UpdateSubscription replaces what the owner may change.
func (s *Store) UpdateSubscription(ctx context.Context, c store.SubscriptionChange) (store.SubscriptionRecord, error) {
	const op = "postgres.UpdateSubscription"
	n := c.Subscription
	r, err := scanRecord(s.pool.QueryRow(ctx, updateSubscription, n.ID, n.Endpoint, nonEmpty(n.Headers),
		string(n.Content), string(n.Status), n.Error, n.Reason, n.HeartbeatPeriod.Microseconds(),
		n.Timeout.Microseconds(), n.MaxCount, pgTime(n.End), n.Updated, c.Resume, c.Handshake))
	return r, recordError(op, err)
}

// DeleteSubscription removes subscription id; its numbering goes with it
// (ON DELETE CASCADE).
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	const op = "postgres.DeleteSubscription"
	tag, err := s.pool.Exec(ctx, deleteSubscription, id)
	if err != nil {
		return dbError(op, err)
	}
	if tag.RowsAffected() == 0 {
		return cpis.E(op, cpis.NotFound, "no subscription has this id")
	}
	return nil
}

// MatchSubscriptionEvents numbers the subscription's new events, in a
// transaction holding its row's lock: lockSubscription, then matchSQL.
func (s *Store) MatchSubscriptionEvents(ctx context.Context, id string, limit int) (store.DeliveryState, error) {
	const op = "postgres.MatchSubscriptionEvents"
	if limit < 1 || limit > maxMatches {
		return store.DeliveryState{}, cpis.E(op, cpis.Invalid, "matching numbers 1 to 1000 events at a time")
	}
	var st store.DeliveryState
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			topic, la, nhs    string
			scanned, numbered int64
		)
		err := tx.QueryRow(ctx, lockSubscription, id).Scan(&topic, &la, &nhs, &scanned, &numbered)
		if err != nil {
			return err
		}
		filter, args := matchFilter(cpis.Topic(topic), la, nhs)
		args = append([]any{id, limit, scanned, numbered}, args...)
		st, err = scanState(tx.QueryRow(ctx, matchSQL(filter), args...))
		return err
	})
	return st, recordError(op, err)
}

// matchFilter is the matchSQL filter of a subscription's topic, and its
// parameters. A topic no filter knows matches nothing: it scans to the
// head and numbers no event.
func matchFilter(topic cpis.Topic, la, nhs string) (string, []any) {
	switch {
	case topic == cpis.TopicASN:
		return asnFilter, []any{la}
	case topic == cpis.TopicPlanChange && la == "":
		return planFilter, []any{nhs}
	case topic == cpis.TopicPlanChange:
		return planOfLAFilter, []any{nhs, la}
	}
	return "false", nil
}

// SubscriptionEvents returns the subscription's numbered events from..until.
func (s *Store) SubscriptionEvents(ctx context.Context, id string, from, until int64, limit int) ([]store.SubscriptionEvent, error) {
	const op = "postgres.SubscriptionEvents"
	if limit < 1 || limit > maxPage {
		return nil, cpis.E(op, cpis.Invalid, "a page of a subscription's events is 1 to 1000")
	}
	evs, err := queryAll(ctx, s, scanSubscriptionEvent, subscriptionEvents, id, from, until, limit)
	if err != nil {
		return nil, dbError(op, err)
	}
	return evs, nil
}

// scanSubscriptionEvent reads an event number and one row of eventColumns.
func scanSubscriptionEvent(row pgx.Row) (store.SubscriptionEvent, error) {
	var se store.SubscriptionEvent
	e, err := scanEvent(leadingRow{row, []any{&se.Number}})
	se.Event = e
	return se, err
}

// leadingRow is a row whose first columns are scanned into lead, before
// what its Scan is given.
type leadingRow struct {
	pgx.Row
	lead []any
}

func (r leadingRow) Scan(dest ...any) error {
	return r.Row.Scan(append(slices.Clone(r.lead), dest...)...)
}

// ClaimSubscriptions leases the subscriptions due at c.Now, earliest
// attempt first.
func (s *Store) ClaimSubscriptions(ctx context.Context, c store.Claim) ([]store.SubscriptionRecord, error) {
	const op = "postgres.ClaimSubscriptions"
	if err := store.CheckClaim(op, c); err != nil {
		return nil, err
	}
	recs, err := queryAll(ctx, s, scanRecord, claimSubscriptions, c.Lease, c.Now.Add(c.For), c.Now, c.Limit)
	if err != nil {
		return nil, dbError(op, err)
	}
	// RETURNING gives the rows in no particular order.
	slices.SortFunc(recs, func(a, b store.SubscriptionRecord) int {
		return cmp.Or(a.State.NextAttempt.Compare(b.State.NextAttempt), strings.Compare(a.ID, b.ID))
	})
	return recs, nil
}

// RecordDelivery writes p if p.Lease still holds the subscription.
func (s *Store) RecordDelivery(ctx context.Context, id string, p store.Progress) error {
	const op = "postgres.RecordDelivery"
	var until pgtype.Timestamptz
	if p.For > 0 {
		until = pgTime(p.Now.Add(p.For))
	}
	st := p.State
	var wrote, exists bool
	err := s.pool.QueryRow(ctx, recordDelivery, id, p.Lease, st.Delivered, st.Handshake, st.Failures,
		pgTime(st.FailingSince), st.NextAttempt, pgTime(st.LastSent), st.LastError, until,
		string(p.Status), p.Error).Scan(&wrote, &exists)
	switch {
	case err != nil:
		return dbError(op, err)
	case !exists:
		return cpis.E(op, cpis.NotFound, "no subscription has this id")
	case !wrote:
		return cpis.E(op, cpis.Conflict, "the lease has been taken by another claimer")
	}
	return nil
}

// SubscriptionBacklog returns the events numbered and not delivered, per
// topic, over the subscriptions that are not off. Every topic is present.
func (s *Store) SubscriptionBacklog(ctx context.Context) (map[cpis.Topic]int64, error) {
	const op = "postgres.SubscriptionBacklog"
	out := map[cpis.Topic]int64{}
	for _, t := range cpis.Topics() {
		out[t] = 0
	}
	rows, err := s.pool.Query(ctx, backlog)
	if err != nil {
		return nil, dbError(op, err)
	}
	var (
		topic string
		n     int64
	)
	_, err = pgx.ForEachRow(rows, []any{&topic, &n}, func() error {
		out[cpis.Topic(topic)] += n
		return nil
	})
	if err != nil {
		return nil, dbError(op, err)
	}
	return out, nil
}

// recordError translates the error of a read or write of one
// subscription: no row is NotFound.
func recordError(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return cpis.E(op, cpis.NotFound, "no subscription has this id")
	}
	return dbError(op, err)
}

// subscriptionArgs are s's values for subscriptionColumns.
func subscriptionArgs(s cpis.Subscription) []any {
	a := s.Owner
	return []any{s.ID, string(a.Kind), a.UserID, a.Name, a.RoleProfileID, a.RoleCode, a.RoleName, a.OrgCode,
		a.OrgName, nonEmpty(a.Activities), string(s.Topic), s.LACode, string(s.NHSNumber), s.Endpoint,
		nonEmpty(s.Headers), string(s.Content), string(s.Status), s.Error, s.Reason,
		s.HeartbeatPeriod.Microseconds(), s.Timeout.Microseconds(), s.MaxCount, pgTime(s.End), s.Created, s.Updated}
}

// nonEmpty is l, or nil (NULL) when it is empty: both read back as nil,
// as in the SQLite store.
func nonEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// scanRecord reads one row of recordColumns.
func scanRecord(row pgx.Row) (store.SubscriptionRecord, error) {
	var (
		r                                 store.SubscriptionRecord
		kind, topic, nhs, content, status string
		heartbeat, timeout                int64
		end                               pgtype.Timestamptz
		created, updated                  time.Time
		st                                stateRow
	)
	s, a := &r.Subscription, &r.Subscription.Owner
	err := row.Scan(append([]any{&s.ID, &kind, &a.UserID, &a.Name, &a.RoleProfileID, &a.RoleCode, &a.RoleName,
		&a.OrgCode, &a.OrgName, &a.Activities, &topic, &s.LACode, &nhs, &s.Endpoint, &s.Headers, &content, &status,
		&s.Error, &s.Reason, &heartbeat, &timeout, &s.MaxCount, &end, &created, &updated}, st.dest()...)...)
	if err != nil {
		return store.SubscriptionRecord{}, err
	}
	a.Kind, a.Activities, s.Headers = cpis.ActorKind(kind), nonEmpty(a.Activities), nonEmpty(s.Headers)
	s.Topic, s.NHSNumber, s.Content, s.Status = cpis.Topic(topic), cpis.NHSNumber(nhs), cpis.PayloadContent(content), cpis.SubscriptionStatus(status)
	s.HeartbeatPeriod, s.Timeout = time.Duration(heartbeat)*time.Microsecond, time.Duration(timeout)*time.Microsecond
	s.End, s.Created, s.Updated = fromPgTime(end), created.UTC(), updated.UTC()
	r.State = st.state()
	return r, nil
}

// scanState reads one row of stateColumns.
func scanState(row pgx.Row) (store.DeliveryState, error) {
	var st stateRow
	if err := row.Scan(st.dest()...); err != nil {
		return store.DeliveryState{}, err
	}
	return st.state(), nil
}

// stateRow is a row of stateColumns as it is scanned.
type stateRow struct {
	s                      store.DeliveryState
	failingSince, lastSent pgtype.Timestamptz
	next                   time.Time
}

func (r *stateRow) dest() []any {
	s := &r.s
	return []any{&s.StartPosition, &s.Scanned, &s.Numbered, &s.Delivered, &s.Handshake, &s.Failures,
		&r.failingSince, &r.next, &r.lastSent, &s.LastError}
}

func (r *stateRow) state() store.DeliveryState {
	s := r.s
	s.FailingSince, s.NextAttempt, s.LastSent = fromPgTime(r.failingSince), r.next.UTC(), fromPgTime(r.lastSent)
	return s
}

// pgTime is t as a TIMESTAMPTZ parameter; the zero time is NULL.
func pgTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// fromPgTime is a TIMESTAMPTZ value in UTC; NULL is the zero time.
func fromPgTime(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}
