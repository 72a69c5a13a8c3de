package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// The event log (store/events.go, migration 0007). A feed position is given
// at commit: every transaction that writes events advances the one row of
// event_head as its last statement before COMMIT, and the row lock of that
// UPDATE is held until the commit is visible (PostgreSQL releases a
// transaction's locks only once every later snapshot sees it committed).
// So a transaction takes positions only once every transaction with lower
// ones is visibly committed, and a reader whose snapshot shows position p
// shows every position below p. Waiting for the lock is brief: another
// event-writing transaction's last statement and its commit.
const (
	// appendPlanEvents advances the head and logs a plan event for each
	// version, in the order given, in one statement: $1 plan ids, $2
	// versions, $3 NHS numbers, $4 LA codes, $5 the writer's time (the
	// latest LastUpdated). An UPDATE that waited for the row lock works on
	// the row as the transaction before it left it, so the positions follow
	// on from that transaction's.
	appendPlanEvents = `WITH h AS (
		UPDATE event_head SET position = position + cardinality($1::text[]),
			stamp = greatest($5::timestamptz, stamp + interval '1 microsecond')
		RETURNING position, stamp)
	INSERT INTO event_log (position, stamp, kind, la_code, nhs_number, plan_id, plan_version)
	SELECT h.position - cardinality($1::text[]) + e.n, h.stamp, 'plan', e.la_code, e.nhs_number, e.id, e.version
	FROM h, unnest($1::text[], $2::int[], $3::text[], $4::text[]) WITH ORDINALITY AS e(id, version, nhs_number, la_code, n)`

	// lockHead takes the head's row lock before appendASNs runs. It must
	// be a statement of its own: a statement sees what had committed when
	// it started, before it waited for the lock, so in one statement the
	// coalescing check could miss an ASN that the transaction it waited
	// for had just committed.
	lockHead = `SELECT FROM event_head FOR NO KEY UPDATE`

	// genericPlan makes the transaction's prepared statements run their
	// generic plans (see queueASNs).
	genericPlan = `SET LOCAL plan_cache_mode = force_generic_plan`

	// readHead is the stamp of the last commit that wrote events.
	readHead = `SELECT stamp FROM event_head`

	// deleteEvents deletes up to $2 of the oldest events stamped before
	// $1, found through event_log_stamp_idx and deleted by tuple id, with
	// every subscription's numbers of them, and returns how many events it
	// deleted. Stamps never decrease along positions, so the events it
	// deletes are the oldest the log holds: every position up to the last
	// of them is gone, and so go their numbers. (A number that a match
	// running meanwhile gives to an event deleted here goes with a later
	// batch's; until then no read finds its event.)
	deleteEvents = `WITH d AS (
		DELETE FROM event_log WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM event_log WHERE stamp < $1 ORDER BY stamp, position LIMIT $2))
		RETURNING position
	), n AS (
		DELETE FROM subscription_event WHERE position <= (SELECT max(position) FROM d)
	)
	SELECT count(*) FROM d`
)

// appendASNs logs the ASNs given, in order, but those that coalesce
// (cpis.ASN.CoalescesWith) with one the log holds or with one it keeps
// before them, and advances the head by as many: $1 ids, $2 audit ids,
// $3 sent, $4 NHS numbers, $5 LA codes, $6 and $7 the bounds of each
// ASN's plan ids in $13, $8 to $11 the organisation's code and name,
// the user's and the role's name, $12 the coalescing windows in
// microseconds. walk goes through the ASNs one by one, carrying the
// numbers of those kept so far. The stamp is the latest time sent of
// those kept.
var appendASNs = `WITH RECURSIVE a AS (
	SELECT a.*, a.sent - a.window_us * interval '1 microsecond' AS since,
		a.sent + a.window_us * interval '1 microsecond' AS until
	FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], $7::int[],
		$8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[])
		WITH ORDINALITY AS a(asn_id, audit_id, sent, nhs_number, la_code, lo, hi,
			org_code, org_name, user_name, role_name, window_us, n)
), walk (n, kept) AS (
	SELECT 0::bigint, '{}'::bigint[]
	UNION ALL
	SELECT w.n + 1, CASE WHEN c.coalesced THEN w.kept ELSE w.kept || (w.n + 1) END
	FROM walk w CROSS JOIN LATERAL (
		SELECT a.window_us > 0 AND (
			EXISTS (SELECT FROM event_log l WHERE l.kind = 'asn' AND ` + coalesces("l") + `)
			OR EXISTS (SELECT FROM a e WHERE e.n = ANY(w.kept) AND ` + coalesces("e") + `)) AS coalesced
		FROM a WHERE a.n = w.n + 1) c
), k AS (
	SELECT a.*, row_number() OVER (ORDER BY a.n) AS r
	FROM a, (SELECT kept FROM walk ORDER BY n DESC LIMIT 1) w WHERE a.n = ANY(w.kept)
), h AS (
	UPDATE event_head SET position = position + (SELECT count(*) FROM k),
		stamp = greatest((SELECT max(sent) FROM k), stamp + interval '1 microsecond')
	WHERE EXISTS (SELECT FROM k)
	RETURNING position, stamp
)
INSERT INTO event_log (position, stamp, kind, la_code, nhs_number, asn_id, audit_id, sent, plan_ids,
	org_code, org_name, user_name, role_name)
SELECT h.position - (SELECT count(*) FROM k) + k.r, h.stamp, 'asn', k.la_code, k.nhs_number, k.asn_id,
	k.audit_id, k.sent, ($13::text[])[k.lo:k.hi], k.org_code, k.org_name, k.user_name, k.role_name
FROM h, k`

// coalesces is the condition that a, the ASN appendASNs is deciding on
// (whose window is not 0), coalesces with t: same child, organisation and
// LA, t sent less than a's window before or after it.
func coalesces(t string) string {
	return t + ".nhs_number = a.nhs_number AND " + t + ".la_code = a.la_code AND " + t + ".org_code = a.org_code AND " +
		t + ".sent > a.since AND " + t + ".sent < a.until"
}

// asnIndex is the index that an ASN id already logged violates.
const asnIndex = "event_log_asn_idx"

// deleteBatch is the most events DeleteEventsBefore deletes in one
// transaction: small enough that each commits in a fraction of a second,
// so retention never holds a long transaction (which would keep vacuum from
// cleaning up after every other write).
const deleteBatch = 10_000

// eventColumns are what Events reads of an event and of the plan version a
// plan event stored, from event_log e and plan_versions v joined to it. An
// ASN has no plan version: its plan columns are zero values rather than
// NULL, so that one scan (scanEvent) reads both kinds.
const eventColumns = `e.position, e.stamp, e.kind, e.la_code, e.nhs_number, e.asn_id, e.audit_id, e.sent,
	e.plan_ids, e.org_code, e.org_name, e.user_name, e.role_name,
	coalesce(v.id, ''), coalesce(v.version, 0), coalesce(v.nhs_number, ''), coalesce(v.plan_type, ''),
	v.start_date, v.end_date, coalesce(v.la_code, ''), coalesce(v.la_name, ''), coalesce(v.emergency_phone, ''),
	coalesce(v.office_phone, ''), v.birth_date, coalesce(v.entered_in_error, false), coalesce(v.last_updated, e.stamp),
	coalesce(v.la_reference, '')`

// planEvents are the PlanChanged events of a transaction, as
// appendPlanEvents takes them.
type planEvents struct {
	ids, nhs, laCodes []string
	versions          []int32
	at                time.Time // the latest LastUpdated
}

// add logs p, as stored.
func (e *planEvents) add(p cpis.Plan) {
	e.ids, e.nhs, e.laCodes = append(e.ids, p.ID), append(e.nhs, string(p.NHSNumber)), append(e.laCodes, p.LA.Code)
	e.versions = append(e.versions, int32(p.Version))
	if p.LastUpdated.After(e.at) {
		e.at = p.LastUpdated
	}
}

func (e *planEvents) args() []any { return []any{e.ids, e.versions, e.nhs, e.laCodes, e.at} }

// asnsOf is every ASN that recs send, in order.
func asnsOf(recs []cpis.AuditRecord) []cpis.ASN {
	var asns []cpis.ASN
	for _, r := range recs {
		asns = append(asns, r.ASNs...)
	}
	return asns
}

// queueASNs queues on b, inside a transaction, the statements that log
// asns: the head's lock, then appendASNs, which is to run its generic plan.
// PostgreSQL would otherwise plan it afresh at every call, as it cannot
// tell that its plans for particular arrays are no better: measured, that
// planning took a third of a millisecond, as long as running it for a
// handful of ASNs.
func queueASNs(b *pgx.Batch, asns []cpis.ASN) {
	n := len(asns)
	var (
		ids, audits, nhs, laCodes        = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		orgCodes, orgNames, users, roles = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sent                             = make([]time.Time, n)
		lo, hi                           = make([]int32, n), make([]int32, n)
		windows                          = make([]int64, n)
		planIDs                          []string
	)
	for i, a := range asns {
		ids[i], audits[i], sent[i], nhs[i], laCodes[i] = a.ID, a.AuditID, a.Sent, string(a.NHSNumber), a.LACode
		orgCodes[i], orgNames[i], users[i], roles[i] = a.OrgCode, a.OrgName, a.UserName, a.RoleName
		windows[i] = a.CoalesceWindow.Microseconds()
		lo[i] = int32(len(planIDs)) + 1
		planIDs = append(planIDs, a.PlanIDs...)
		hi[i] = int32(len(planIDs))
	}
	b.Queue(genericPlan)
	b.Queue(lockHead)
	b.Queue(appendASNs, ids, audits, sent, nhs, laCodes, lo, hi, orgCodes, orgNames, users, roles, windows, planIDs)
}

// Events returns one page of the event log. The head's stamp is read first
// and the page after it, in one round trip: every event stamped up to the
// head's stamp had committed before the page's query began, so the page
// saw it (see Horizon).
func (s *Store) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	const op = "postgres.Events"
	if err := store.CheckEventQuery(op, q); err != nil {
		return store.EventPage{}, err
	}
	sql, args := EventsSQL(q)
	var head pgtype.Timestamptz
	var events []store.Event
	b := &pgx.Batch{}
	b.Queue(readHead).QueryRow(func(row pgx.Row) error { return row.Scan(&head) })
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		var err error
		events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Event, error) { return scanEvent(r) })
		return err
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return store.EventPage{}, dbError(op, err)
	}
	page := store.EventPage{Events: events}
	if len(events) > q.Limit {
		page.Events, page.More = events[:q.Limit], true
	}
	page.Horizon = horizon(head, page.Events)
	return page, nil
}

// horizon is one microsecond after the latest of the head's stamp, read
// before the page, and the stamps of the events returned: every event
// stamped up to either had committed when the page was read, and a later
// commit is stamped after both (its stamp is after the head's as the head
// then was). Zero for an empty log.
func horizon(head pgtype.Timestamptz, events []store.Event) time.Time {
	var last time.Time
	if head.Valid {
		last = head.Time.UTC()
	}
	for _, e := range events {
		if e.Stamp.After(last) {
			last = e.Stamp
		}
	}
	if last.IsZero() {
		return time.Time{}
	}
	return last.Add(time.Microsecond)
}

// EventsSQL builds the page query of Events for q, fetching one event more
// than the page to tell whether there are more. It is exported so that a
// test can check, with EXPLAIN, that a page reads no more than it needs.
// Kinds are written into the SQL, not passed as parameters, so that the
// planner can match the partial indexes on ASNs in a generic plan too.
func EventsSQL(q store.EventQuery) (string, []any) {
	var w where
	if q.Kind != "" {
		w.add("e.kind = '" + string(q.Kind) + "'") // one of the two kinds: CheckEventQuery
	}
	if q.LACode != "" {
		w.add("e.la_code = " + w.arg(q.LACode))
	}
	if q.NHSNumber != "" {
		w.add("e.nhs_number = " + w.arg(string(q.NHSNumber)))
	}
	if q.ASNID != "" {
		w.add("e.asn_id = " + w.arg(q.ASNID) + " AND e.asn_id <> ''") // the predicate of event_log_asn_idx
	}
	if !q.From.IsZero() {
		w.add("e.stamp >= " + w.arg(q.From))
	}
	if !q.Before.IsZero() {
		w.add("e.stamp < " + w.arg(q.Before))
	}
	order := " ORDER BY e.stamp, e.position"
	cmp, bound := ">", ">="
	if q.Order == store.NewestFirst {
		order = " ORDER BY e.stamp DESC, e.position DESC"
		cmp, bound = "<", "<="
	}
	if q.After != nil {
		// The plain bound lets the index start at the key, as in SearchPlans.
		at := w.arg(q.After.Stamp)
		w.add("e.stamp " + bound + " " + at + " AND (e.stamp, e.position) " + cmp + " (" + at + ", " + w.arg(q.After.Position) + ")")
	}
	sql := `SELECT ` + eventColumns + ` FROM event_log e
		LEFT JOIN plan_versions v ON v.id = e.plan_id AND v.version = e.plan_version` +
		w.sql() + order + w.page(q.Limit+1)
	return sql, w.args
}

// scanEvent reads one row of eventColumns.
func scanEvent(row pgx.Row) (store.Event, error) {
	var (
		e         store.Event
		a         cpis.ASN
		kind, nhs string
		sent      pgtype.Timestamptz
	)
	p, err := scanPlanAfter(row, &e.Position, &e.Stamp, &kind, &e.LACode, &nhs, &a.ID, &a.AuditID, &sent,
		&a.PlanIDs, &a.OrgCode, &a.OrgName, &a.UserName, &a.RoleName)
	if err != nil {
		return store.Event{}, err
	}
	e.Stamp, e.Kind, e.NHSNumber = e.Stamp.UTC(), store.EventKind(kind), cpis.NHSNumber(nhs)
	switch e.Kind {
	case store.PlanChanged:
		e.Plan = p
	case store.ASNSent:
		a.Sent, a.NHSNumber, a.LACode = sent.Time.UTC(), e.NHSNumber, e.LACode
		e.ASN = a
	}
	return e, nil
}

// DeleteEventsBefore deletes the events stamped before cutoff, oldest
// first, with their numbers in every subscription, a batch at a time, each
// batch a transaction of its own. Deleting takes no lock that a writer
// waits for: writers insert new events and numbers and advance the head,
// none of which conflicts with deleting old rows.
func (s *Store) DeleteEventsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	const op = "postgres.DeleteEventsBefore"
	var deleted int64
	for {
		var n int64
		if err := s.pool.QueryRow(ctx, deleteEvents, cutoff, deleteBatch).Scan(&n); err != nil {
			return deleted, dbError(op, err)
		}
		deleted += n
		if n < deleteBatch {
			return deleted, nil
		}
	}
}
