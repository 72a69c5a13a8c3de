package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cpis-fhir/cpis/internal/store/postgres"
)

// auditPartitions is what a store that partitions its audit trail by month
// offers (PostgreSQL). Every replica runs the upkeep; the store serialises
// it, and both steps are idempotent.
type auditPartitions interface {
	EnsureAuditPartitions(ctx context.Context, now time.Time, monthsAhead int) error
	DropAuditPartitionsBefore(ctx context.Context, now, cutoff time.Time) ([]string, error)
}

// upkeepInterval is how often the upkeep runs after the run at start. Months
// are long, but a run that finds nothing to do costs one catalog query, and
// hourly runs retry a failed one (a lock wait that timed out) soon.
const upkeepInterval = time.Hour

// upkeep applies the event log's retention, keeps the audit partitions
// ahead of the server's clock and, when a retention is configured, drops
// whole months of the audit trail older than it. start runs it
// once before serving, so that the current month's partition exists before
// the first record is written; maintain runs it periodically; tests run it
// after moving the clock. Every run reads the injected clock, the one the
// records are stamped with. A store without partitions needs only the
// event retention, if one is configured.
func (s *server) upkeep(ctx context.Context) error {
	at := s.now()
	return errors.Join(s.auditUpkeep(ctx, at), s.eventRetention(ctx, at))
}

// auditUpkeep keeps the audit partitions ahead and applies their retention.
func (s *server) auditUpkeep(ctx context.Context, at time.Time) error {
	p, ok := s.store.(auditPartitions)
	if !ok {
		return nil
	}
	if err := p.EnsureAuditPartitions(ctx, at, postgres.DefaultAuditMonthsAhead); err != nil {
		return fmt.Errorf("audit partitions: %w", err)
	}
	if s.cfg.AuditRetentionMonths <= 0 {
		return nil
	}
	y, m, _ := at.UTC().Date()
	cutoff := time.Date(y, m-time.Month(s.cfg.AuditRetentionMonths), 1, 0, 0, 0, 0, time.UTC)
	dropped, err := p.DropAuditPartitionsBefore(ctx, at, cutoff)
	if len(dropped) > 0 {
		s.log.Info("audit retention", slog.Int("partitions_dropped", len(dropped)), slog.Int("keep_months", s.cfg.AuditRetentionMonths))
	}
	if err != nil {
		return fmt.Errorf("audit retention: %w", err)
	}
	return nil
}

// maintain runs upkeep every upkeepInterval until ctx ends. A failed run is
// logged and retried at the next: records written meanwhile wait in the
// default partition, and are moved to their month's when it is made.
func (s *server) maintain(ctx context.Context) {
	t := time.NewTicker(upkeepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.upkeep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("upkeep", slog.String("error", err.Error()))
		}
	}
}

// eventRetention deletes the events older than CPIS_EVENT_RETENTION_DAYS
// before at (on every store; replicas running it at once delete each
// event once).
func (s *server) eventRetention(ctx context.Context, at time.Time) error {
	if s.cfg.EventRetentionDays <= 0 {
		return nil
	}
	n, err := s.store.DeleteEventsBefore(ctx, at.AddDate(0, 0, -s.cfg.EventRetentionDays))
	if n > 0 {
		s.log.Info("event retention", slog.Int64("events_deleted", n), slog.Int("keep_days", s.cfg.EventRetentionDays))
	}
	if err != nil {
		return fmt.Errorf("event retention: %w", err)
	}
	return nil
}
