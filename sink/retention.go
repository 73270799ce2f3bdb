package sink

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// DroppedPartition is one partition the retention job dropped.
type DroppedPartition struct {
	Database  string // the main database or an agency's copy (18.16)
	Table     string
	Partition string // 20251123 (daily tables) or 202511 (rollups)
}

// DropExpired applies the configured retention by dropping every partition
// whose rows are all older than their table's retention at now. Servers
// without TTL (18.16) need it; on current servers TTL deletes the rows
// already, and running it too is harmless (it also frees whole partitions
// at once instead of waiting for a TTL merge). Dropping a partition is a
// metadata operation: no rows are read or rewritten.
func (s *Sink) DropExpired(ctx context.Context, now time.Time) ([]DroppedPartition, error) {
	var dropped []DroppedPartition
	opts := s.DDLOptions()
	for _, r := range schemas.Retentions(opts) {
		if r.Days <= 0 {
			continue
		}
		cutoff := now.UTC().AddDate(0, 0, -r.Days)
		parts, err := s.partitions(ctx, r.Table)
		if err != nil {
			return dropped, err
		}
		for _, p := range parts {
			end, ok := partitionEnd(p.partition, r.PartitionMonthly)
			if !ok || end.After(cutoff) {
				continue
			}
			q := fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", p.database, r.Table, p.partition)
			if err := s.conn.Exec(ctx, q); err != nil {
				return dropped, fmt.Errorf("retention: drop partition %s of %s.%s: %w", p.partition, p.database, r.Table, err)
			}
			s.log.Info("retention dropped a partition", "database", p.database, "table", r.Table, "partition", p.partition, "retention_days", r.Days)
			dropped = append(dropped, DroppedPartition{Database: p.database, Table: r.Table, Partition: p.partition})
		}
	}
	return dropped, nil
}

type partition struct{ database, partition string }

// partitions lists the partitions of table in the main database and in the
// agencies' copy databases (<db>_<agency>, 18.16 isolation).
func (s *Sink) partitions(ctx context.Context, table string) ([]partition, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT database, partition FROM system.parts WHERE (database = ? OR startsWith(database, ?)) AND table = ? AND active ORDER BY database, partition",
		s.cfg.Database, s.cfg.Database+"_", table)
	if err != nil {
		return nil, fmt.Errorf("retention: list partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var out []partition
	for rows.Next() {
		var p partition
		if err := rows.Scan(&p.database, &p.partition); err != nil {
			return nil, fmt.Errorf("retention: list partitions of %s: %w", table, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// partitionEnd is the first instant after the partition's rows: the next day
// for 20251123, the next month for 202511.
func partitionEnd(p string, monthly bool) (time.Time, bool) {
	n, err := strconv.Atoi(p)
	if err != nil {
		return time.Time{}, false
	}
	if monthly {
		if len(p) != 6 {
			return time.Time{}, false
		}
		return time.Date(n/100, time.Month(n%100), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0), true
	}
	if len(p) != 8 {
		return time.Time{}, false
	}
	return time.Date(n/10000, time.Month(n/100%100), n%100, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1), true
}

// RunRetention runs DropExpired every interval until ctx ends. Errors are
// logged and retried at the next tick: retention is never worth stopping
// the pipeline for.
func (s *Sink) RunRetention(ctx context.Context, every time.Duration, now func() time.Time) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.DropExpired(ctx, now()); err != nil && ctx.Err() == nil {
			s.log.Warn("retention job failed; retrying at the next tick", "err", err, "every", every)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
