package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cpis-fhir/cpis/internal/store/postgres"
)

// auditPartitions is what a store that partitions its audit trail by month
// offers (PostgreSQL). Every replica runs the maintenance; the store
// serialises it, and both steps are idempotent.
type auditPartitions interface {
	EnsureAuditPartitions(ctx context.Context, now time.Time, monthsAhead int) error
	DropAuditPartitionsBefore(ctx context.Context, cutoff time.Time) ([]string, error)
}

// maintainInterval is how often partitions are checked: months are long, a
// day is plenty, and a start-up run covers a replica that was down.
const maintainInterval = 24 * time.Hour

// maintain keeps audit partitions ahead of the clock and, when a retention
// is configured, drops whole months older than it. It runs until ctx ends.
func (s *server) maintain(ctx context.Context, p auditPartitions, now func() time.Time) {
	t := time.NewTicker(maintainInterval)
	defer t.Stop()
	for {
		s.maintainOnce(ctx, p, now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *server) maintainOnce(ctx context.Context, p auditPartitions, at time.Time) {
	if err := p.EnsureAuditPartitions(ctx, at, postgres.DefaultAuditMonthsAhead); err != nil {
		s.log.Warn("audit partitions", slog.String("error", err.Error()))
	}
	if s.cfg.AuditRetentionMonths <= 0 {
		return
	}
	start := time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
	dropped, err := p.DropAuditPartitionsBefore(ctx, start.AddDate(0, -s.cfg.AuditRetentionMonths, 0))
	if err != nil {
		s.log.Warn("audit retention", slog.String("error", err.Error()))
		return
	}
	if len(dropped) > 0 {
		s.log.Info("audit retention", slog.Int("partitions_dropped", len(dropped)), slog.Int("keep_months", s.cfg.AuditRetentionMonths))
	}
}
