package register

import (
	"context"
	"strconv"

	"github.com/cpis-fhir/cpis/internal/store"
)

// Entry is one entry of a batch or transaction Bundle: a write, or why it
// could not be read (Err).
type Entry struct {
	Write Write
	Err   error
}

// EntryResult is what one entry did, or why it failed.
type EntryResult struct {
	Result Result
	Err    error
}

// EntryError is the failure of a transaction: entry Index failed, so nothing
// was stored.
type EntryError struct {
	Index int
	Err   error
}

func (e *EntryError) Error() string { return "entry " + strconv.Itoa(e.Index) + ": " + e.Err.Error() }
func (e *EntryError) Unwrap() error { return e.Err }

// entryKey is the idempotency key of entry i of a Bundle sent with request
// id rid: a retried Bundle replays each of its entries.
func entryKey(rid string, i int) string {
	if rid == "" {
		return ""
	}
	return rid + "/" + strconv.Itoa(i)
}

// Batch carries out each entry alone, in its own transaction, as Apply
// would: one entry failing never stops another.
func (s *Service) Batch(ctx context.Context, c Caller, entries []Entry) ([]EntryResult, error) {
	const op = "register.Batch"
	p, err := writer(c, op)
	if err != nil {
		return nil, err
	}
	out := make([]EntryResult, len(entries))
	for i, e := range entries {
		if e.Err != nil {
			out[i].Err = e.Err
			continue
		}
		w := e.Write
		w.RequestID = entryKey(c.RequestID, i)
		if w, err = s.prepare(p, w, op); err != nil {
			out[i].Err = err
			continue
		}
		out[i].Err = s.inTx(ctx, p.LACode, func(tx store.WriteTx) error {
			var err error
			out[i].Result, err = s.applyIn(ctx, tx, c, newView(p.LACode), w, op)
			return err
		})
	}
	return out, nil
}

// Transaction carries out every entry in one transaction, in order, each
// seeing the ones before it: all of them, or, when one fails, none, and an
// *EntryError naming it.
func (s *Service) Transaction(ctx context.Context, c Caller, entries []Entry) ([]EntryResult, error) {
	const op = "register.Transaction"
	p, err := writer(c, op)
	if err != nil {
		return nil, err
	}
	writes := make([]Write, len(entries))
	for i, e := range entries {
		if e.Err != nil {
			return nil, &EntryError{Index: i, Err: e.Err}
		}
		w := e.Write
		w.RequestID = entryKey(c.RequestID, i)
		if writes[i], err = s.prepare(p, w, op); err != nil {
			return nil, &EntryError{Index: i, Err: err}
		}
	}
	out := make([]EntryResult, len(entries))
	err = s.inTx(ctx, p.LACode, func(tx store.WriteTx) error {
		return s.transact(ctx, tx, c, writes, out, op)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// transact decides writes in tx, in order, and stores them with one Put.
func (s *Service) transact(ctx context.Context, tx store.WriteTx, c Caller, writes []Write, out []EntryResult, op string) error {
	v := newView(c.Principal.LACode)
	var fresh []Write
	replayed := make([]bool, len(writes))
	for i, w := range writes {
		res, ok, err := replay(ctx, tx, w, op)
		if err != nil {
			return &EntryError{Index: i, Err: err}
		}
		out[i].Result, replayed[i] = res, ok
		if !ok {
			fresh = append(fresh, w)
		}
	}
	if err := v.load(ctx, tx, fresh); err != nil {
		return wrap(op, err)
	}
	for i, w := range writes {
		if replayed[i] {
			continue
		}
		res, err := s.decide(v, c, w, op)
		if err != nil {
			return &EntryError{Index: i, Err: err}
		}
		out[i].Result = res
	}
	return wrap(op, tx.Put(ctx, v.versions, v.recs))
}
