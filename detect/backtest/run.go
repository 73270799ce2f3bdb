package backtest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says which stored events a backtest reads.
type Config struct {
	Database string    // ClickHouse database holding the events table
	Since    time.Time // inclusive
	Until    time.Time // exclusive; zero means now
	Agency   string    // "" for every agency
	Samples  int       // sample hits to return, 0..1000
}

var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
var agencyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate reports the first bad setting, naming its key.
func (c Config) Validate() error {
	switch {
	case !identPattern.MatchString(c.Database):
		return fmt.Errorf("backtest.database %q must be a plain identifier", c.Database)
	case c.Since.IsZero():
		return errors.New("backtest.since is required")
	case !c.Until.IsZero() && !c.Until.After(c.Since):
		return fmt.Errorf("backtest.until (%s) must be after backtest.since (%s)", c.Until, c.Since)
	case c.Agency != "" && !agencyPattern.MatchString(c.Agency):
		return fmt.Errorf("backtest.agency %q must match %s", c.Agency, agencyPattern)
	case c.Samples < 0 || c.Samples > 1000:
		return fmt.Errorf("backtest.samples must be between 0 and 1000, got %d", c.Samples)
	}
	return nil
}

// DayCount is the hits of one agency on one UTC day.
type DayCount struct {
	Agency string `json:"agency"`
	Day    string `json:"day"` // YYYY-MM-DD
	Hits   uint64 `json:"hits"`
}

// Sample is one matching event.
type Sample struct {
	EventID string    `json:"event_id"`
	Agency  string    `json:"agency"`
	Time    time.Time `json:"time"`
	Format  string    `json:"format"`
	Raw     string    `json:"raw"` // the first 200 characters
}

// Result is a backtest's outcome.
type Result struct {
	RuleID   string        `json:"rule"`
	Title    string        `json:"title"`
	Since    time.Time     `json:"since"`
	Until    time.Time     `json:"until"`
	Agency   string        `json:"agency,omitempty"`
	Hits     uint64        `json:"hits"`
	Days     []DayCount    `json:"days"`
	Samples  []Sample      `json:"samples"`
	Unrouted bool          `json:"unrouted,omitempty"`
	SQL      string        `json:"sql"`
	Elapsed  time.Duration `json:"-"`
	// ElapsedMS is Elapsed in milliseconds, for JSON.
	ElapsedMS int64 `json:"elapsed_ms"`
}

// where is the full WHERE clause of q under cfg.
func (cfg Config) where(q *Query, now time.Time) (string, time.Time) {
	until := cfg.Until
	if until.IsZero() {
		until = now.Truncate(time.Second).Add(time.Second) // include this second's events
	}
	parts := []string{
		"time >= toDateTime(" + strconv.FormatInt(cfg.Since.Unix(), 10) + ")",
		"time < toDateTime(" + strconv.FormatInt(until.Unix(), 10) + ")",
	}
	if cfg.Agency != "" {
		parts = append(parts, "agency = "+Quote(cfg.Agency))
	}
	parts = append(parts, q.Where)
	return and(parts...), until
}

// MaxQuerySize is the max_query_size the backtest queries run with: a
// SigmaHQ rule with thousands of hash values compiles to more SQL (and a
// bigger AST) than the server's defaults allow.
const MaxQuerySize = 16 << 20

// WithQuerySettings returns ctx carrying the settings backtest queries need.
func WithQuerySettings(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_query_size": MaxQuerySize, "max_ast_elements": 10_000_000, "max_expanded_ast_elements": 10_000_000,
	}))
}

// Run counts q's hits per agency and day and fetches sample hits. Rows
// the ReplacingMergeTree has not merged yet are counted once (by event id).
func Run(ctx context.Context, conn driver.Conn, q *Query, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx = WithQuerySettings(ctx)
	start := time.Now()
	where, until := cfg.where(q, start)
	res := &Result{RuleID: q.RuleID, Title: q.Title, Since: cfg.Since.UTC(), Until: until.UTC(), Agency: cfg.Agency, Unrouted: q.Unrouted,
		Days: []DayCount{}, Samples: []Sample{}}
	res.SQL = fmt.Sprintf("SELECT agency, toString(toDate(time)) AS day, uniqExact(event_id) AS hits FROM %s.events WHERE %s GROUP BY agency, day ORDER BY agency, day",
		cfg.Database, where)
	rows, err := conn.Query(ctx, res.SQL)
	if err != nil {
		return nil, fmt.Errorf("backtest rule %s: count hits: %w", q.RuleID, err)
	}
	for rows.Next() {
		var d DayCount
		if err := rows.Scan(&d.Agency, &d.Day, &d.Hits); err != nil {
			rows.Close()
			return nil, fmt.Errorf("backtest rule %s: read counts: %w", q.RuleID, err)
		}
		res.Hits += d.Hits
		res.Days = append(res.Days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backtest rule %s: read counts: %w", q.RuleID, err)
	}
	if cfg.Samples > 0 && res.Hits > 0 {
		sq := fmt.Sprintf("SELECT toString(event_id), agency, toUnixTimestamp(time), format, substring(raw_data, 1, 200) FROM %s.events WHERE %s ORDER BY time DESC, event_id LIMIT 1 BY event_id LIMIT %d",
			cfg.Database, where, cfg.Samples)
		rows, err := conn.Query(ctx, sq)
		if err != nil {
			return nil, fmt.Errorf("backtest rule %s: sample hits: %w", q.RuleID, err)
		}
		for rows.Next() {
			var s Sample
			var ts uint32
			if err := rows.Scan(&s.EventID, &s.Agency, &ts, &s.Format, &s.Raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("backtest rule %s: read samples: %w", q.RuleID, err)
			}
			s.Time = time.Unix(int64(ts), 0).UTC()
			s.Raw = strings.ToValidUTF8(s.Raw, "")
			res.Samples = append(res.Samples, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("backtest rule %s: read samples: %w", q.RuleID, err)
		}
	}
	res.Elapsed = time.Since(start)
	res.ElapsedMS = res.Elapsed.Milliseconds()
	return res, nil
}

// MatchingIDs returns the ids of every stored event q matches under cfg,
// sorted (for comparing with the streaming engine).
func MatchingIDs(ctx context.Context, conn driver.Conn, q *Query, cfg Config) ([]string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	where, _ := cfg.where(q, time.Now())
	rows, err := conn.Query(WithQuerySettings(ctx), fmt.Sprintf("SELECT DISTINCT toString(event_id) AS id FROM %s.events WHERE %s ORDER BY id", cfg.Database, where))
	if err != nil {
		return nil, fmt.Errorf("backtest rule %s: list hits: %w", q.RuleID, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
