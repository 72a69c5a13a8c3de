package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Subscriptions and their delivery state (store/subscriptions.go, migration
// 0008). Every write runs on the one writer, which is what serializes the
// matching of a subscription and makes a claim's choice and its lease one
// step: no two claims can lease one subscription, and a match numbers each
// event once.

// The columns of a cpis.Subscription, in subscriptionArgs' order, and of
// its store.DeliveryState.
const (
	subscriptionCols = `id, owner_kind, owner_user_id, owner_name, owner_role_profile_id, owner_role_code,
	owner_role_name, owner_org_code, owner_org_name, owner_activities, topic, la_code, nhs_number, endpoint,
	headers, content, status, error, reason, heartbeat_us, timeout_us, max_count, end_at, created, updated`
	stateCols = `start_position, scanned, numbered, delivered, handshake, failures, failing_since,
	next_attempt, last_sent, last_error`
	recordCols = subscriptionCols + ", " + stateCols
)

const (
	// sqlInsertSubscription stores a subscription at the log's head, due
	// at its creation (the 24th parameter, created, again).
	sqlInsertSubscription = `INSERT INTO subscriptions (` + subscriptionCols + `, start_position, scanned, next_attempt)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, h.position, h.position, ?
		FROM event_head h
		RETURNING ` + recordCols
	sqlSubscription       = `SELECT ` + recordCols + ` FROM subscriptions WHERE id = ?`
	sqlOwnerSubscriptions = `SELECT ` + recordCols + ` FROM subscriptions
		WHERE owner_org_code = ? AND owner_user_id = ? ORDER BY created, id`
	// sqlUpdateSubscription: what the owner may change (?11 the time of
	// update), ?12 resume, ?13 the handshake to resume with, ?14 the id.
	sqlUpdateSubscription = `UPDATE subscriptions SET endpoint = ?, headers = ?, content = ?, status = ?,
			error = ?, reason = ?, heartbeat_us = ?, timeout_us = ?, max_count = ?, end_at = ?, updated = ?,
			failures = CASE WHEN ?12 THEN 0 ELSE failures END,
			failing_since = CASE WHEN ?12 THEN NULL ELSE failing_since END,
			last_error = CASE WHEN ?12 THEN '' ELSE last_error END,
			next_attempt = CASE WHEN ?12 THEN ?11 ELSE next_attempt END,
			handshake = CASE WHEN ?12 THEN ?13 ELSE handshake END,
			lease = NULL, lease_until = NULL
		WHERE id = ?14
		RETURNING ` + recordCols
	sqlDeleteSubscription = `DELETE FROM subscriptions WHERE id = ?`
	sqlBacklog            = `SELECT topic, SUM(numbered - delivered) FROM subscriptions
		WHERE status <> 'off' GROUP BY topic`

	sqlMatchStart = `SELECT topic, la_code, nhs_number, scanned, numbered FROM subscriptions WHERE id = ?`
	// sqlNumber numbers the positions of a JSON array, in its order, from
	// the second parameter + 1.
	sqlNumber = `INSERT INTO subscription_event (subscription_id, number, position)
		SELECT ?, ? + j.key + 1, j.value FROM json_each(?) j`
	sqlMatched = `UPDATE subscriptions SET numbered = ?, scanned = ? WHERE id = ? RETURNING ` + stateCols

	// unscannedMatch says, of subscription s, that an event matching it
	// committed after its scan: a probe of the topic's partial index
	// (migration 0008), so a subscription none of whose events came is not
	// claimed, however busy the log.
	unscannedMatch = `(s.topic = '` + string(cpis.TopicASN) + `' AND EXISTS (SELECT 1 FROM event_log e
		WHERE e.kind = 'asn' AND e.la_code = s.la_code AND e.position > s.scanned)
	OR s.topic = '` + string(cpis.TopicPlanChange) + `' AND EXISTS (SELECT 1 FROM event_log e
		WHERE e.kind = 'plan' AND e.nhs_number = s.nhs_number AND e.position > s.scanned
			AND (s.la_code = '' OR e.la_code = s.la_code)))`

	// sqlClaim leases the due subscriptions: the lease, its end, now and
	// the limit.
	sqlClaim = `UPDATE subscriptions SET lease = ?1, lease_until = ?2
		WHERE id IN (SELECT id FROM subscriptions s WHERE ` + sqlDue + `
			ORDER BY next_attempt, id LIMIT ?4)
		RETURNING ` + recordCols

	// sqlDue is a claim's rule (store.Store.ClaimSubscriptions): now is ?3.
	sqlDue = `status IN ('requested', 'active') AND next_attempt <= ?3
				AND (lease_until IS NULL OR lease_until <= ?3)
				AND (NOT handshake OR numbered > delivered OR ` + unscannedMatch + `
					OR heartbeat_us > 0 AND MAX(created, COALESCE(last_sent, created)) + heartbeat_us <= ?3)`

	// sqlAnyDue asks, outside the writer, whether a claim would take
	// anything: most polls find nothing, and need not queue behind (nor
	// hold up) the audit commits for the one write lock.
	sqlAnyDue = `SELECT EXISTS (SELECT 1 FROM subscriptions s WHERE ` + sqlDue + `)`

	// sqlRecordDelivery writes a lease holder's progress: the id, the
	// lease, the state, the lease's new end (NULL releases it), the status
	// and its error.
	sqlRecordDelivery = `UPDATE subscriptions SET delivered = MAX(delivered, ?3), handshake = ?4, failures = ?5,
			failing_since = ?6, next_attempt = ?7, last_sent = ?8, last_error = ?9,
			lease = CASE WHEN ?10 IS NULL THEN NULL ELSE lease END, lease_until = ?10,
			status = CASE WHEN ?11 <> '' AND status IN ('requested', 'active') THEN ?11 ELSE status END,
			error = CASE WHEN ?11 <> '' AND status IN ('requested', 'active') THEN ?12 ELSE error END
		WHERE id = ?1 AND lease = ?2`
	sqlSubscriptionExists = `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE id = ?)`

	// sqlSubscriptionEvents reads numbered events: the subscription, the
	// numbers' bounds and the limit. Events retention removed have no row
	// in event_log to join. position is the column both tables share.
	sqlSubscriptionEvents = `SELECT number, ` + eventCols + ` FROM subscription_event JOIN event_log USING (position)
		WHERE subscription_id = ? AND number >= ? AND number <= ?
		ORDER BY number` + pageLimit

	// sqlDeleteNumbers removes the numbers of events retention removed:
	// those before the oldest event left, as retention removes the oldest.
	sqlDeleteNumbers = `DELETE FROM subscription_event WHERE position <
		COALESCE((SELECT MIN(position) FROM event_log), (SELECT position + 1 FROM event_head))`
)

// Scans of the log after a position by topic: the kinds are literals, each
// the predicate of the partial index the scan reads (migration 0008).
const (
	sqlScanASNs      = `SELECT position FROM event_log WHERE kind = 'asn' AND la_code = ? AND position > ? ORDER BY position LIMIT ?`
	sqlScanPlans     = `SELECT position FROM event_log WHERE kind = 'plan' AND nhs_number = ? AND position > ? ORDER BY position LIMIT ?`
	sqlScanPlansOfLA = `SELECT position FROM event_log WHERE kind = 'plan' AND nhs_number = ? AND la_code = ?
		AND position > ? ORDER BY position LIMIT ?`
)

// maxMatches is the most events one MatchSubscriptionEvents may number.
const maxMatches = 1000

// errNoSubscription is the NotFound of a call naming no subscription.
func errNoSubscription(op string) error {
	return cpis.E(op, cpis.NotFound, "no subscription has this id")
}

// CreateSubscription stores s with a fresh delivery state.
func (s *Store) CreateSubscription(ctx context.Context, sub cpis.Subscription) (store.SubscriptionRecord, error) {
	const op = "sqlite.CreateSubscription"
	if sub.ID == "" {
		return store.SubscriptionRecord{}, cpis.E(op, cpis.Invalid, "a subscription needs an id")
	}
	args, err := subscriptionArgs(sub)
	if err != nil {
		return store.SubscriptionRecord{}, fail(op, err)
	}
	var r store.SubscriptionRecord
	err = s.write(ctx, op, func(tx *sql.Tx) error {
		var err error
		r, err = scanRecord(tx.QueryRowContext(ctx, sqlInsertSubscription, append(args, micros(sub.Created))...))
		if kindOf(err) == cpis.Conflict { // the primary key: nothing else can be violated
			return cpis.E(op, cpis.Conflict, "a subscription with this id is already stored")
		}
		return err
	})
	return r, err
}

// Subscription returns subscription id.
func (s *Store) Subscription(ctx context.Context, id string) (store.SubscriptionRecord, error) {
	const op = "sqlite.Subscription"
	st, err := s.rs.get(ctx, sqlSubscription)
	if err != nil {
		return store.SubscriptionRecord{}, fail(op, err)
	}
	r, err := scanRecord(st.QueryRowContext(ctx, id))
	return r, recordError(op, err)
}

// SubscriptionsOf returns o's subscriptions, oldest first.
func (s *Store) SubscriptionsOf(ctx context.Context, o store.Owner) ([]store.SubscriptionRecord, error) {
	const op = "sqlite.SubscriptionsOf"
	recs, err := queryAll(ctx, s, scanRecord, sqlOwnerSubscriptions, o.OrgCode, o.ClientID)
	if err != nil {
		return nil, fail(op, err)
	}
	return recs, nil
}

// UpdateSubscription replaces what the owner may change.
func (s *Store) UpdateSubscription(ctx context.Context, c store.SubscriptionChange) (store.SubscriptionRecord, error) {
	const op = "sqlite.UpdateSubscription"
	n := c.Subscription
	headers, err := jsonList(n.Headers)
	if err != nil {
		return store.SubscriptionRecord{}, fail(op, err)
	}
	var r store.SubscriptionRecord
	err = s.write(ctx, op, func(tx *sql.Tx) error {
		var err error
		r, err = scanRecord(tx.QueryRowContext(ctx, sqlUpdateSubscription, n.Endpoint, headers, string(n.Content),
			string(n.Status), n.Error, n.Reason, n.HeartbeatPeriod.Microseconds(), n.Timeout.Microseconds(),
			n.MaxCount, nullMicros(n.End), micros(n.Updated), boolInt(c.Resume), boolInt(c.Handshake), n.ID))
		return recordError(op, err)
	})
	return r, err
}

// DeleteSubscription removes subscription id; its numbering goes with it
// (ON DELETE CASCADE).
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	const op = "sqlite.DeleteSubscription"
	return s.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlDeleteSubscription, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, errNoSubscription(op))
		}
		return nil
	})
}

// MatchSubscriptionEvents numbers the subscription's new events, in one
// write transaction: the writer sees every event committed, so a scan
// that finds fewer than limit has reached the head.
func (s *Store) MatchSubscriptionEvents(ctx context.Context, id string, limit int) (store.DeliveryState, error) {
	const op = "sqlite.MatchSubscriptionEvents"
	if limit < 1 || limit > maxMatches {
		return store.DeliveryState{}, cpis.E(op, cpis.Invalid, "matching numbers 1 to 1000 events at a time")
	}
	var st store.DeliveryState
	err := s.write(ctx, op, func(tx *sql.Tx) error {
		var (
			topic, la, nhs          string
			scanned, numbered, head int64
		)
		err := tx.QueryRowContext(ctx, sqlMatchStart, id).Scan(&topic, &la, &nhs, &scanned, &numbered)
		if err != nil {
			return recordError(op, err)
		}
		if err := tx.QueryRowContext(ctx, sqlEventHead).Scan(&head, new(int64)); err != nil {
			return err
		}
		found, err := scanMatches(ctx, tx, cpis.Topic(topic), la, nhs, scanned, limit)
		if err != nil {
			return err
		}
		if err := number(ctx, tx, id, numbered, found); err != nil {
			return err
		}
		scanned = max(scanned, head)
		if len(found) == limit {
			scanned = found[len(found)-1]
		}
		st, err = scanState(tx.QueryRowContext(ctx, sqlMatched, numbered+int64(len(found)), scanned, id))
		return err
	})
	return st, err
}

// scanMatches returns the positions after from of the events that match
// a subscription, up to limit, in order. A topic no scan knows matches
// nothing.
func scanMatches(ctx context.Context, tx *sql.Tx, topic cpis.Topic, la, nhs string, from int64, limit int) ([]int64, error) {
	var rows *sql.Rows
	var err error
	switch {
	case topic == cpis.TopicASN:
		rows, err = tx.QueryContext(ctx, sqlScanASNs, la, from, limit)
	case topic == cpis.TopicPlanChange && la == "":
		rows, err = tx.QueryContext(ctx, sqlScanPlans, nhs, from, limit)
	case topic == cpis.TopicPlanChange:
		rows, err = tx.QueryContext(ctx, sqlScanPlansOfLA, nhs, la, from, limit)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// number gives the events at positions the numbers after numbered.
func number(ctx context.Context, tx *sql.Tx, id string, numbered int64, positions []int64) error {
	if len(positions) == 0 {
		return nil
	}
	list, err := json.Marshal(positions)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, sqlNumber, id, numbered, string(list))
	return err
}

// SubscriptionEvents returns the subscription's numbered events from..until.
func (s *Store) SubscriptionEvents(ctx context.Context, id string, from, until int64, limit int) ([]store.SubscriptionEvent, error) {
	const op = "sqlite.SubscriptionEvents"
	if limit < 1 || limit > maxPage {
		return nil, cpis.E(op, cpis.Invalid, "a page of a subscription's events is 1 to 1000")
	}
	out, err := queryAll(ctx, s, scanSubscriptionEvent, sqlSubscriptionEvents, id, from, until, limit)
	if err != nil {
		return nil, fail(op, err)
	}
	evs := make([]store.Event, len(out))
	for i, se := range out {
		evs[i] = se.Event
	}
	if err := s.readPlans(ctx, evs); err != nil {
		return nil, fail(op, err)
	}
	for i := range out {
		out[i].Event = evs[i]
	}
	return out, nil
}

// scanSubscriptionEvent reads an event number and one row of eventCols.
func scanSubscriptionEvent(sc scanner) (store.SubscriptionEvent, error) {
	var se store.SubscriptionEvent
	e, err := scanEvent(leadingScanner{sc, []any{&se.Number}})
	se.Event = e
	return se, err
}

// leadingScanner is a row whose first columns are scanned into lead,
// before what its Scan is given.
type leadingScanner struct {
	scanner
	lead []any
}

func (l leadingScanner) Scan(dest ...any) error {
	return l.scanner.Scan(append(slices.Clone(l.lead), dest...)...)
}

// ClaimSubscriptions leases the subscriptions due at c.Now, earliest
// attempt first.
func (s *Store) ClaimSubscriptions(ctx context.Context, c store.Claim) ([]store.SubscriptionRecord, error) {
	const op = "sqlite.ClaimSubscriptions"
	if err := store.CheckClaim(op, c); err != nil {
		return nil, err
	}
	var due bool
	if err := s.r.QueryRowContext(ctx, sqlAnyDue, nil, nil, micros(c.Now)).Scan(&due); err != nil {
		return nil, fail(op, err)
	}
	if !due {
		return nil, nil
	}
	var recs []store.SubscriptionRecord
	err := s.write(ctx, op, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, sqlClaim, c.Lease, micros(c.Now.Add(c.For)), micros(c.Now), c.Limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives the rows in no particular order.
	slices.SortFunc(recs, func(a, b store.SubscriptionRecord) int {
		return cmp.Or(a.State.NextAttempt.Compare(b.State.NextAttempt), strings.Compare(a.ID, b.ID))
	})
	return recs, nil
}

// RecordDelivery writes p if p.Lease still holds the subscription.
func (s *Store) RecordDelivery(ctx context.Context, id string, p store.Progress) error {
	const op = "sqlite.RecordDelivery"
	var until any // NULL: released
	if p.For > 0 {
		until = micros(p.Now.Add(p.For))
	}
	st := p.State
	return s.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlRecordDelivery, id, p.Lease, st.Delivered, boolInt(st.Handshake),
			st.Failures, nullMicros(st.FailingSince), micros(st.NextAttempt), nullMicros(st.LastSent), st.LastError,
			until, string(p.Status), p.Error)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, sqlSubscriptionExists, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return errNoSubscription(op)
		}
		return cpis.E(op, cpis.Conflict, "the lease has been taken by another claimer")
	})
}

// SubscriptionBacklog returns the events numbered and not delivered, per
// topic, over the subscriptions that are not off. Every topic is present.
func (s *Store) SubscriptionBacklog(ctx context.Context) (map[cpis.Topic]int64, error) {
	const op = "sqlite.SubscriptionBacklog"
	type row struct {
		topic string
		n     int64
	}
	rows, err := queryAll(ctx, s, func(sc scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.topic, &r.n)
	}, sqlBacklog)
	if err != nil {
		return nil, fail(op, err)
	}
	out := map[cpis.Topic]int64{}
	for _, t := range cpis.Topics() {
		out[t] = 0
	}
	for _, r := range rows {
		out[cpis.Topic(r.topic)] += r.n
	}
	return out, nil
}

// recordError translates the error of a read or write of one
// subscription: no row is NotFound.
func recordError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return errNoSubscription(op)
	}
	return fail(op, err)
}

// subscriptionArgs are s's values for subscriptionCols.
func subscriptionArgs(s cpis.Subscription) ([]any, error) {
	a := s.Owner
	acts, err1 := jsonList(a.Activities)
	headers, err2 := jsonList(s.Headers)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return []any{s.ID, string(a.Kind), a.UserID, a.Name, a.RoleProfileID, a.RoleCode, a.RoleName, a.OrgCode,
		a.OrgName, acts, string(s.Topic), s.LACode, string(s.NHSNumber), s.Endpoint, headers, string(s.Content),
		string(s.Status), s.Error, s.Reason, s.HeartbeatPeriod.Microseconds(), s.Timeout.Microseconds(),
		s.MaxCount, nullMicros(s.End), micros(s.Created), micros(s.Updated)}, nil
}

// scanRecord reads one row of recordCols.
func scanRecord(sc scanner) (store.SubscriptionRecord, error) {
	var (
		r                                 store.SubscriptionRecord
		kind, topic, nhs, content, status string
		acts, headers                     sql.NullString
		heartbeat, timeout                int64
		end                               sql.NullInt64
		created, updated                  int64
		st                                stateRow
	)
	s, a := &r.Subscription, &r.Subscription.Owner
	err := sc.Scan(append([]any{&s.ID, &kind, &a.UserID, &a.Name, &a.RoleProfileID, &a.RoleCode, &a.RoleName,
		&a.OrgCode, &a.OrgName, &acts, &topic, &s.LACode, &nhs, &s.Endpoint, &headers, &content, &status,
		&s.Error, &s.Reason, &heartbeat, &timeout, &s.MaxCount, &end, &created, &updated}, st.dest()...)...)
	if err != nil {
		return store.SubscriptionRecord{}, err
	}
	a.Kind, s.Topic, s.NHSNumber = cpis.ActorKind(kind), cpis.Topic(topic), cpis.NHSNumber(nhs)
	s.Content, s.Status = cpis.PayloadContent(content), cpis.SubscriptionStatus(status)
	s.HeartbeatPeriod, s.Timeout = time.Duration(heartbeat)*time.Microsecond, time.Duration(timeout)*time.Microsecond
	s.End, s.Created, s.Updated = fromNullMicros(end), fromMicros(created), fromMicros(updated)
	r.State = st.state()
	return r, errors.Join(unjsonList(acts, &a.Activities), unjsonList(headers, &s.Headers))
}

// scanState reads one row of stateCols.
func scanState(sc scanner) (store.DeliveryState, error) {
	var st stateRow
	if err := sc.Scan(st.dest()...); err != nil {
		return store.DeliveryState{}, err
	}
	return st.state(), nil
}

// stateRow is a row of stateCols as it is scanned.
type stateRow struct {
	s                      store.DeliveryState
	handshake              int
	failingSince, lastSent sql.NullInt64
	next                   int64
}

func (r *stateRow) dest() []any {
	s := &r.s
	return []any{&s.StartPosition, &s.Scanned, &s.Numbered, &s.Delivered, &r.handshake, &s.Failures,
		&r.failingSince, &r.next, &r.lastSent, &s.LastError}
}

func (r *stateRow) state() store.DeliveryState {
	s := r.s
	s.Handshake = r.handshake == 1
	s.FailingSince, s.NextAttempt, s.LastSent = fromNullMicros(r.failingSince), fromMicros(r.next), fromNullMicros(r.lastSent)
	return s
}

// nullMicros is t as stored, NULL for the zero time.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// fromNullMicros is a stored instant; NULL is the zero time.
func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}
