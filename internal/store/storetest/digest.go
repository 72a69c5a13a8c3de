package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// digestOf is a digest as the register makes one of an import line: the
// hex SHA-256 of its bytes. To the store it is an opaque string.
func digestOf(line string) string {
	sum := sha256.Sum256([]byte(line))
	return hex.EncodeToString(sum[:])
}

// testDigests: ByDigest finds this LA's plans not entered in error by the
// digest their current version was stored with, and nothing else: not a
// digest a later version replaced or cleared, not a withdrawn plan, not
// another LA's.
func testDigests(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	nhs := 0
	fresh := func(authority int) cpis.Plan {
		nhs++
		p := newPlan(nhsNumber(t, nhs), la(authority), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		p.Version = 1
		return p
	}
	later := baseTime().Add(time.Minute)
	t.Run("found by its digest, in the transaction that stored it and after", func(t *testing.T) {
		p, d := fresh(0), digestOf("found")
		tx := begin(t, ctx, s, la(0).Code)
		putIn(t, ctx, tx, []store.Version{{Plan: p, Digest: d}}, writeRecord(p, cpis.ActionCreate, "create", p.LastUpdated))
		wantByDigestIn(t, ctx, tx, []string{d, digestOf("no line"), ""}, map[string]cpis.Plan{d: p})
		commit(t, ctx, tx)
		wantByDigest(t, ctx, s, la(0).Code, []string{d, d}, map[string]cpis.Plan{d: p})
		wantByDigest(t, ctx, s, la(0).Code, []string{""}, nil) // every plan stored without a digest has ""
		wantByDigest(t, ctx, s, la(0).Code, nil, nil)
		wantCurrent(t, ctx, s, p) // the digest is no part of the plan
	})
	t.Run("a version without a digest clears it", func(t *testing.T) {
		p, d := fresh(0), digestOf("cleared")
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: p, Digest: d}})
		q := next(p, later, func(p *cpis.Plan) { p.OfficePhone = "" })
		put(t, ctx, s, la(0).Code, versions(q))
		wantByDigest(t, ctx, s, la(0).Code, []string{d}, nil)
	})
	t.Run("a new version's digest replaces the old one", func(t *testing.T) {
		p, d1, d2 := fresh(0), digestOf("replaced 1"), digestOf("replaced 2")
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: p, Digest: d1}})
		q := next(p, later, func(p *cpis.Plan) { p.End = cpis.MustDate("2025-11-30") })
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: q, Digest: d2}})
		wantByDigest(t, ctx, s, la(0).Code, []string{d1, d2}, map[string]cpis.Plan{d2: q})
	})
	t.Run("versions of one plan in one call: the last one's", func(t *testing.T) {
		p, d1, d2 := fresh(0), digestOf("one call 1"), digestOf("one call 2")
		q := next(p, later, nil)
		r, d3 := fresh(0), digestOf("one call 3")
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: p, Digest: d1}, {Plan: r, Digest: d3}, {Plan: q, Digest: d2},
			{Plan: next(r, later, nil)}})
		wantByDigest(t, ctx, s, la(0).Code, []string{d1, d2, d3}, map[string]cpis.Plan{d2: q})
	})
	t.Run("a withdrawn plan is not found", func(t *testing.T) {
		p, d := fresh(0), digestOf("withdrawn")
		gone := next(p, later, func(p *cpis.Plan) { p.EnteredInError = true })
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: p, Digest: d}})
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: gone, Digest: d}}) // a line that withdraws it, say
		wantByDigest(t, ctx, s, la(0).Code, []string{d}, nil)
	})
	t.Run("another LA's plan is not found", func(t *testing.T) {
		mine, theirs, d := fresh(0), fresh(1), digestOf("the same line")
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: mine, Digest: d}})
		put(t, ctx, s, la(1).Code, []store.Version{{Plan: theirs, Digest: d}})
		only := digestOf("theirs only")
		other := fresh(1)
		put(t, ctx, s, la(1).Code, []store.Version{{Plan: other, Digest: only}})
		wantByDigest(t, ctx, s, la(0).Code, []string{d, only}, map[string]cpis.Plan{d: mine})
		wantByDigest(t, ctx, s, la(1).Code, []string{d, only}, map[string]cpis.Plan{d: theirs, only: other})
		wantByDigest(t, ctx, s, la(2).Code, []string{d, only}, nil)
	})
	t.Run("one digest on several plans: the smallest id", func(t *testing.T) {
		a, b, d := fresh(0), fresh(0), digestOf("twice")
		a.ID, b.ID = "twice-b", "twice-a"
		put(t, ctx, s, la(0).Code, []store.Version{{Plan: a, Digest: d}, {Plan: b, Digest: d}})
		wantByDigest(t, ctx, s, la(0).Code, []string{d}, map[string]cpis.Plan{d: b})
	})
}

// wantByDigest checks what ByDigest gives in a new write transaction of
// laCode, which it then rolls back.
func wantByDigest(t *testing.T, ctx context.Context, s store.Store, laCode string, digests []string, want map[string]cpis.Plan) {
	t.Helper()
	tx, err := s.BeginWrite(ctx, laCode)
	if err != nil {
		t.Fatalf("BeginWrite: %v", err)
	}
	defer tx.Rollback(ctx)
	wantByDigestIn(t, ctx, tx, digests, want)
}

// wantByDigestIn checks what ByDigest gives in tx.
func wantByDigestIn(t *testing.T, ctx context.Context, tx store.WriteTx, digests []string, want map[string]cpis.Plan) {
	t.Helper()
	got, err := tx.ByDigest(ctx, digests)
	if err != nil {
		t.Fatalf("ByDigest: %v", err)
	}
	if got == nil {
		t.Error("ByDigest returned a nil map")
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ByDigest(%q) mismatch (-want +got):\n%s", digests, diff)
	}
}
