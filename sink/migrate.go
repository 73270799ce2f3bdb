package sink

import (
	"context"
	"fmt"

	"github.com/watchfloor/watchfloor/schemas"
)

// migration is one versioned schema step. Steps are append-only: a released
// step is never edited, a change is a new step.
type migration struct {
	version int
	name    string
	stmts   func(schemas.DDLOptions) []string
}

var migrations = []migration{
	{1, "events, detections and dead_letters tables", schemas.CreateStatements},
}

// MigrationResult reports what Migrate did.
type MigrationResult struct {
	Applied []string // names of the steps applied now
	Current int      // schema version after the run
}

// Migrate brings the schema to the latest version. It is idempotent: steps
// already recorded in schema_migrations are skipped, and every statement is
// itself idempotent so a step cut short by a crash can run again.
func (s *Sink) Migrate(ctx context.Context) (MigrationResult, error) {
	var res MigrationResult
	db := s.cfg.Database
	opts := schemas.DDLOptions{
		Database:                db,
		Features:                s.features,
		EventRetentionDays:      s.cfg.EventRetentionDays,
		DetectionRetentionDays:  s.cfg.DetectionRetentionDays,
		DeadLetterRetentionDays: s.cfg.DeadLetterRetentionDays,
	}
	boot := []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s", db),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree() ORDER BY version", db),
	}
	for _, q := range boot {
		if err := s.conn.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("migrate: %s: %w", firstLine(q), err)
		}
	}
	done := map[int]bool{}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT version FROM %s.schema_migrations", db))
	if err != nil {
		return res, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return res, fmt.Errorf("migrate: read applied versions: %w", err)
		}
		done[int(v)] = true
	}
	rows.Close()
	for _, m := range migrations {
		if done[m.version] {
			res.Current = m.version
			continue
		}
		for _, q := range m.stmts(opts) {
			if err := s.conn.Exec(ctx, q); err != nil {
				return res, fmt.Errorf("migrate step %d (%s): %s: %w", m.version, m.name, firstLine(q), err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return res, fmt.Errorf("migrate step %d: record it: %w", m.version, err)
		}
		res.Applied = append(res.Applied, m.name)
		res.Current = m.version
	}
	return res, nil
}

func firstLine(q string) string {
	for i := 0; i < len(q); i++ {
		if q[i] == '\n' {
			return q[:i]
		}
	}
	return q
}

// recordMigration inserts through a native batch: an INSERT ... VALUES sent
// with Exec stalls on 18.16 servers.
func (s *Sink) recordMigration(ctx context.Context, m migration) error {
	b, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name)", s.cfg.Database))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Append(uint32(m.version), m.name); err != nil {
		return err
	}
	return b.Send()
}
