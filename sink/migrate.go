package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/watchfloor/watchfloor/schemas"
)

// MigrationResult reports what Migrate did.
type MigrationResult struct {
	Applied []string // names of the steps applied now
	Current int      // schema version after the run
}

// DDLOptions are the schema options for the connected server and config.
func (s *Sink) DDLOptions() schemas.DDLOptions {
	return schemas.DDLOptions{
		Database:                s.cfg.Database,
		Features:                s.features,
		EventRetentionDays:      s.cfg.EventRetentionDays,
		DetectionRetentionDays:  s.cfg.DetectionRetentionDays,
		DeadLetterRetentionDays: s.cfg.DeadLetterRetentionDays,
	}
}

// Migrate brings the schema to the latest version (schemas.Migrations). It is
// idempotent: steps already recorded in schema_migrations are skipped, and
// every statement is itself idempotent (IF NOT EXISTS, or "already exists"
// taken as done on servers without it) so a step cut short by a crash can
// run again. On servers with TTL it then re-applies the configured retention
// where the table's TTL differs.
func (s *Sink) Migrate(ctx context.Context) (MigrationResult, error) {
	var res MigrationResult
	db := s.cfg.Database
	opts := s.DDLOptions()
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
	for _, m := range schemas.Migrations() {
		if done[m.Version] {
			res.Current = m.Version
			continue
		}
		if err := s.execAll(ctx, m.Statements(opts)); err != nil {
			return res, fmt.Errorf("migrate step %d (%s): %w", m.Version, m.Name, err)
		}
		if m.Name == schemas.BackfillStep {
			cut, err := s.viewsCreated(ctx)
			if err != nil {
				return res, fmt.Errorf("migrate step %d: %w", m.Version, err)
			}
			// A crash between the backfill and its record below (a few
			// milliseconds) would backfill twice on the next run.
			if err := s.execAll(ctx, schemas.BackfillStatements(opts, cut)); err != nil {
				return res, fmt.Errorf("migrate step %d: backfill rollups: %w", m.Version, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return res, fmt.Errorf("migrate step %d: record it: %w", m.Version, err)
		}
		res.Applied = append(res.Applied, m.Name)
		res.Current = m.Version
	}
	if err := s.applyTTL(ctx, opts); err != nil {
		return res, err
	}
	return res, nil
}

func (s *Sink) execAll(ctx context.Context, stmts []schemas.Statement) error {
	for _, st := range stmts {
		err := s.conn.Exec(ctx, st.SQL)
		var ex *clickhouse.Exception
		if err != nil && st.ExistsOK && errors.As(err, &ex) && ex.Code == codeIllegalColumn && strings.Contains(ex.Message, "already exists") {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", firstLine(st.SQL), err)
		}
	}
	return nil
}

// applyTTL changes a table's TTL only when it differs from the config, since
// MODIFY TTL rewrites parts on current servers (materialize_ttl_after_modify).
func (s *Sink) applyTTL(ctx context.Context, opts schemas.DDLOptions) error {
	stmts := schemas.RetentionStatements(opts)
	if len(stmts) == 0 {
		return nil
	}
	for i, r := range schemas.Retentions(opts) {
		var create string
		if err := s.conn.QueryRow(ctx, "SELECT create_table_query FROM system.tables WHERE database = ? AND name = ?", opts.Database, r.Table).Scan(&create); err != nil {
			return fmt.Errorf("migrate: read TTL of %s: %w", r.Table, err)
		}
		has := strings.Contains(create, "TTL ")
		want := fmt.Sprintf("toIntervalDay(%d)", r.Days)
		if r.Days > 0 && has && strings.Contains(create, want) || r.Days <= 0 && !has {
			continue
		}
		if err := s.execAll(ctx, stmts[i:i+1]); err != nil {
			return fmt.Errorf("migrate: apply retention of %s: %w", r.Table, err)
		}
	}
	return nil
}

// viewsCreated returns, per rollup table, when its materialized view was
// created (the view's metadata time, which a re-run does not change).
func (s *Sink) viewsCreated(ctx context.Context) (map[string]string, error) {
	cut := map[string]string{}
	for _, r := range schemas.Rollups(s.features) {
		var at time.Time
		if err := s.conn.QueryRow(ctx, "SELECT metadata_modification_time FROM system.tables WHERE database = ? AND name = ?",
			s.cfg.Database, r.Table+"_mv").Scan(&at); err != nil {
			return nil, fmt.Errorf("read creation time of view %s_mv: %w", r.Table, err)
		}
		cut[r.Table] = at.UTC().Format(time.DateTime)
	}
	return cut, nil
}

func firstLine(q string) string {
	if i := strings.IndexByte(q, '\n'); i >= 0 {
		return q[:i]
	}
	return q
}

// recordMigration inserts through a native batch: an INSERT ... VALUES sent
// with Exec stalls on 18.16 servers.
func (s *Sink) recordMigration(ctx context.Context, m schemas.Migration) error {
	b, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name)", s.cfg.Database))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Append(uint32(m.Version), m.Name); err != nil {
		return err
	}
	return b.Send()
}
