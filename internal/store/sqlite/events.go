package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// The event log (internal/store/events.go). SQLite has one writer, so a
// transaction that writes events is the only one running from its BEGIN
// IMMEDIATE to its COMMIT: it reads and advances event_head, and inserts
// its events after it, inside its own transaction, and positions follow
// the order of commits without any other lock.

const (
	// sqlAdvanceHead takes the positions and the stamp of a transaction's
	// events: it moves the head on by their number (the first parameter)
	// and to the stamp max(the writer's time, the head's stamp + 1 µs), and
	// returns the new head: the last event's position, and the stamp.
	sqlAdvanceHead = `UPDATE event_head SET position = position + ?, stamp = max(stamp + 1, ?) RETURNING position, stamp`
	// sqlInsertPlanEvents logs plan versions given as one JSON array of
	// [id, version, nhs_number, la_code], at positions from the first
	// parameter on, in the array's order.
	sqlInsertPlanEvents = `INSERT INTO event_log (position, stamp, kind, la_code, nhs_number, plan_id, plan_version)
		SELECT ? + j.key, ?, 'plan', j.value ->> 3, j.value ->> 2, j.value ->> 0, j.value ->> 1 FROM json_each(?) j`
	sqlInsertASNEvent = `INSERT INTO event_log (position, stamp, kind, la_code, nhs_number,
			asn_id, audit_id, sent, plan_ids, org_code, org_name, user_name, role_name)
		VALUES (?, ?, 'asn', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// sqlCoalesces asks whether an ASN for the child, LA and organisation
	// was sent in (from, to): a probe of event_log_coalesce_idx.
	sqlCoalesces = `SELECT EXISTS (SELECT 1 FROM event_log
		WHERE kind = 'asn' AND nhs_number = ? AND la_code = ? AND org_code = ? AND sent > ? AND sent < ?)`

	sqlEventHead = `SELECT position, stamp FROM event_head`
	// eventCols are the columns an event is read from, in scanEvent's order.
	eventCols = `position, stamp, kind, la_code, nhs_number, plan_id, plan_version,
		asn_id, audit_id, sent, plan_ids, org_code, org_name, user_name, role_name`
	// sqlEventPlans reads the plan versions of a page's plan events, given
	// as a JSON array of [id, version]: a probe of the primary key each.
	sqlEventPlans = `SELECT ` + planCols + ` FROM plan_versions
		WHERE (id, version) IN (SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?) j)`
	// sqlDeleteEvents removes up to a chunk (the second parameter) of the
	// events stamped before the first, the oldest first.
	sqlDeleteEvents = `DELETE FROM event_log WHERE position IN
		(SELECT position FROM event_log WHERE stamp < ? ORDER BY stamp LIMIT ?)`
)

// eventChunk bounds the plan events one insert carries (a JSON array of
// about a megabyte), so that an upload of a whole register does not build
// one string of tens of megabytes at its commit.
const eventChunk = 10_000

// deleteChunk is how many events one transaction of retention removes:
// every write of the process waits while it runs, so it stays short (a
// few tens of milliseconds) and other writes go between chunks.
const deleteChunk = 10_000

// planKey is a plan version to log: what its event holds of it.
type planKey struct {
	id, nhs, la string
	version     int
}

// pendingPlans are the versions a transaction stored, to be logged when it
// commits.
type pendingPlans struct {
	keys   []planKey
	latest time.Time // the latest LastUpdated among them: the writer's time
}

func (pp *pendingPlans) add(p cpis.Plan) {
	pp.keys = append(pp.keys, planKey{id: p.ID, nhs: string(p.NHSNumber), la: p.LA.Code, version: p.Version})
	if p.LastUpdated.After(pp.latest) {
		pp.latest = p.LastUpdated
	}
}

// stmtFor returns a write statement bound to the transaction at hand.
type stmtFor func(query string) *sql.Stmt

// advanceHead gives a transaction's n events, the latest written at
// latest, their positions first, first+1, ... and their stamp.
func advanceHead(ctx context.Context, stmt stmtFor, n int, latest time.Time) (first, stamp int64, err error) {
	var last int64
	err = stmt(sqlAdvanceHead).QueryRowContext(ctx, n, micros(latest)).Scan(&last, &stamp)
	return last - int64(n) + 1, stamp, err
}

// logPlans logs the versions of pp, in order, as the transaction's events.
func logPlans(ctx context.Context, stmt stmtFor, pp pendingPlans) error {
	if len(pp.keys) == 0 {
		return nil
	}
	first, stamp, err := advanceHead(ctx, stmt, len(pp.keys), pp.latest)
	if err != nil {
		return err
	}
	insert := stmt(sqlInsertPlanEvents)
	for start := 0; start < len(pp.keys); start += eventChunk {
		rows := make([][4]any, 0, min(eventChunk, len(pp.keys)-start))
		for _, k := range pp.keys[start:min(start+eventChunk, len(pp.keys))] {
			rows = append(rows, [4]any{k.id, k.version, k.nhs, k.la})
		}
		list, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		if _, err := insert.ExecContext(ctx, first+int64(start), stamp, string(list)); err != nil {
			return err
		}
	}
	return nil
}

// sendASNs logs the ASNs of recs that do not coalesce, with what the log
// holds or with one sent before them in recs. A call without ASNs reads
// and writes nothing here.
func sendASNs(ctx context.Context, stmt stmtFor, recs []cpis.AuditRecord) error {
	var sent []cpis.ASN
	for _, r := range recs {
		for _, a := range r.ASNs {
			coalesced, err := coalesces(ctx, stmt, a, sent)
			if err != nil {
				return err
			}
			if !coalesced {
				sent = append(sent, a)
			}
		}
	}
	if len(sent) == 0 {
		return nil
	}
	var latest time.Time
	for _, a := range sent {
		if a.Sent.After(latest) {
			latest = a.Sent
		}
	}
	first, stamp, err := advanceHead(ctx, stmt, len(sent), latest)
	if err != nil {
		return err
	}
	insert := stmt(sqlInsertASNEvent)
	for i, a := range sent {
		plans, err := jsonList(a.PlanIDs)
		if err != nil {
			return err
		}
		_, err = insert.ExecContext(ctx, first+int64(i), stamp, a.LACode, string(a.NHSNumber),
			a.ID, a.AuditID, micros(a.Sent), plans, a.OrgCode, a.OrgName, a.UserName, a.RoleName)
		if err != nil {
			return err
		}
	}
	return nil
}

// coalesces reports whether a is not sent: it coalesces with an ASN of
// sent, or with one the log holds. The one writer makes the look-up and
// the insert that may follow atomic.
func coalesces(ctx context.Context, stmt stmtFor, a cpis.ASN, sent []cpis.ASN) (bool, error) {
	if a.CoalesceWindow <= 0 {
		return false, nil
	}
	for _, other := range sent {
		if a.CoalescesWith(other) {
			return true, nil
		}
	}
	var found bool
	err := stmt(sqlCoalesces).QueryRowContext(ctx, string(a.NHSNumber), a.LACode, a.OrgCode,
		micros(a.Sent.Add(-a.CoalesceWindow)), micros(a.Sent.Add(a.CoalesceWindow))).Scan(&found)
	return found, err
}

// Events returns one page of the log. The head is read before the page, so
// that the horizon never runs ahead of what the page could see.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	const op = "sqlite.Events"
	if err := store.CheckEventQuery(op, q); err != nil {
		return store.EventPage{}, err
	}
	var headPos, headStamp int64
	if err := s.r.QueryRowContext(ctx, sqlEventHead).Scan(&headPos, &headStamp); err != nil {
		return store.EventPage{}, fail(op, err)
	}
	query, args := eventSearchSQL(q)
	// One row more than the page tells whether there is a next page.
	evs, err := queryAll(ctx, s, scanEvent, query, append(args, q.Limit+1)...)
	if err != nil {
		return store.EventPage{}, fail(op, err)
	}
	page := store.EventPage{Events: evs, More: len(evs) > q.Limit}
	if page.More {
		page.Events = evs[:q.Limit]
	}
	if err := s.readPlans(ctx, page.Events); err != nil {
		return store.EventPage{}, fail(op, err)
	}
	page.Horizon = horizon(headPos, fromMicros(headStamp), page.Events)
	return page, nil
}

// eventSearchSQL builds the query for q, without its LIMIT argument. The
// kind is a literal, so that the planner may use the indexes kept for
// ASNs only.
func eventSearchSQL(q store.EventQuery) (string, []any) {
	var w where
	switch q.Kind {
	case store.PlanChanged:
		w.add("kind = 'plan'")
	case store.ASNSent:
		w.add("kind = 'asn'")
	}
	if q.LACode != "" {
		w.add("la_code = ?", q.LACode)
	}
	if q.NHSNumber != "" {
		w.add("nhs_number = ?", string(q.NHSNumber))
	}
	if q.ASNID != "" {
		w.add("asn_id = ?", q.ASNID)
	}
	if !q.From.IsZero() {
		w.add("stamp >= ?", micros(q.From))
	}
	if !q.Before.IsZero() {
		w.add("stamp < ?", micros(q.Before))
	}
	order := " ORDER BY stamp DESC, position DESC"
	cmp, bound := "<", "<="
	if q.Order == store.OldestFirst {
		order = " ORDER BY stamp, position"
		cmp, bound = ">", ">="
	}
	if q.After != nil {
		// The plain bound lets the planner start an index on stamp at the key.
		at := micros(q.After.Stamp)
		w.add("stamp "+bound+" ? AND (stamp, position) "+cmp+" (?, ?)", at, at, q.After.Position)
	}
	return `SELECT ` + eventCols + ` FROM event_log` + w.String() + order + pageLimit, w.args
}

// scanEvent reads one row of eventCols. A plan event gets its version's
// key only: readPlans reads the rest.
func scanEvent(sc scanner) (store.Event, error) {
	var (
		e                                    store.Event
		stamp                                int64
		kind, nhs                            string
		planID, asnID, auditID, plans        sql.NullString
		orgCode, orgName, userName, roleName sql.NullString
		version, sent                        sql.NullInt64
	)
	err := sc.Scan(&e.Position, &stamp, &kind, &e.LACode, &nhs, &planID, &version,
		&asnID, &auditID, &sent, &plans, &orgCode, &orgName, &userName, &roleName)
	if err != nil {
		return e, err
	}
	e.Stamp, e.Kind, e.NHSNumber = fromMicros(stamp), store.EventKind(kind), cpis.NHSNumber(nhs)
	switch e.Kind {
	case store.PlanChanged:
		e.Plan = cpis.Plan{ID: planID.String, Version: int(version.Int64)}
	case store.ASNSent:
		e.ASN = cpis.ASN{ID: asnID.String, AuditID: auditID.String, Sent: fromMicros(sent.Int64),
			NHSNumber: e.NHSNumber, LACode: e.LACode, OrgCode: orgCode.String, OrgName: orgName.String,
			UserName: userName.String, RoleName: roleName.String}
		err = unjsonList(plans, &e.ASN.PlanIDs)
	}
	return e, err
}

// errEventWithoutPlan reports a corrupt log: a plan event whose version
// is not stored. Versions are never deleted, so it cannot happen.
var errEventWithoutPlan = errors.New("a plan event's version is not stored")

// readPlans fills in the plan versions of the plan events of evs, in one
// query.
func (s *Store) readPlans(ctx context.Context, evs []store.Event) error {
	type key struct {
		id      string
		version int
	}
	var keys [][2]any
	for _, e := range evs {
		if e.Kind == store.PlanChanged {
			keys = append(keys, [2]any{e.Plan.ID, e.Plan.Version})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	plans, err := queryAll(ctx, s, scanPlan, sqlEventPlans, string(list))
	if err != nil {
		return err
	}
	byKey := make(map[key]cpis.Plan, len(plans))
	for _, p := range plans {
		byKey[key{p.ID, p.Version}] = p
	}
	for i, e := range evs {
		if e.Kind != store.PlanChanged {
			continue
		}
		p, ok := byKey[key{e.Plan.ID, e.Plan.Version}]
		if !ok {
			return errEventWithoutPlan
		}
		evs[i].Plan = p
	}
	return nil
}

// horizon is one microsecond after the newest stamp the page could have
// seen: the head's, read before the page, or a newer one the page holds
// (committed between the two reads). Zero if the log was empty.
func horizon(headPos int64, headStamp time.Time, evs []store.Event) time.Time {
	if headPos == 0 && len(evs) == 0 {
		return time.Time{}
	}
	h := headStamp
	for _, e := range evs {
		if e.Stamp.After(h) {
			h = e.Stamp
		}
	}
	return h.Add(time.Microsecond)
}

// DeleteEventsBefore removes the events stamped before cutoff, a chunk per
// transaction, each with every subscription's numbers of its events. The
// head stays, so positions are never given again. If a chunk fails, the
// count is of the chunks removed before it.
func (s *Store) DeleteEventsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.deleteEventsBefore(ctx, cutoff, deleteChunk)
}

// deleteEventsBefore is DeleteEventsBefore, chunk events a transaction.
func (s *Store) deleteEventsBefore(ctx context.Context, cutoff time.Time, chunk int64) (int64, error) {
	const op = "sqlite.DeleteEventsBefore"
	var total int64
	for {
		var n int64
		err := s.write(ctx, op, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, sqlDeleteEvents, micros(cutoff), chunk)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, sqlDeleteNumbers)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < chunk {
			return total, nil
		}
	}
}
