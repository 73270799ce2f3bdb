package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
)

const queryUsage = `Usage: watchfloor query [flags] NAME [ARG] | "SQL"

Runs a named query, or read-only SQL, and prints a table, CSV or JSON.

Named queries (--since bounds the time, --agency scopes to one agency):
  top-domains        DNS domains by queries, with NXDOMAIN counts (rollup)
  nxdomain           NXDOMAIN rate per agency (rollup)
  events-per-hour    events per agency, class and hour (rollup)
  detections         latest detections, newest first
  detections-per-rule detections per rule and level (rollup)
  dead-letters       latest dead letters with their reasons
  event ID           one event, every column (vertical)

Raw SQL must be a SELECT, WITH, SHOW, DESCRIBE or EXISTS statement. It is
scoped by the login, not by --agency: connect as the agency's analyst
(--clickhouse.user analyst_<agency>; on 18.16 also --clickhouse.database
<db>_<agency>, the agency's own database).

Examples:
  watchfloor query top-domains --agency doj --since 24h
  watchfloor query detections --since 1h --format json
  watchfloor query event 3f1c...-...
  watchfloor query "SELECT count() FROM watchfloor.events" --format csv
`

type namedQuery struct {
	sql string // $db is the database; agency filter is {agency}
	arg bool   // takes one positional argument
}

var namedQueries = map[string]namedQuery{
	"top-domains": {sql: `SELECT domain, sum(queries) AS queries, sum(nxdomain) AS nxdomain
FROM $db.dns_per_domain_hour WHERE hour >= toStartOfHour(toDateTime(?)){agency}
GROUP BY domain ORDER BY queries DESC, domain LIMIT ?`},
	"nxdomain": {sql: `SELECT agency, sum(queries) AS total_queries, sum(nxdomain) AS total_nxdomain, round(total_nxdomain / total_queries, 4) AS nxdomain_rate
FROM $db.dns_per_domain_hour WHERE hour >= toStartOfHour(toDateTime(?)){agency}
GROUP BY agency ORDER BY nxdomain_rate DESC LIMIT ?`},
	"events-per-hour": {sql: `SELECT toStartOfHour(minute) AS hour, agency, class_uid, sum(events) AS events
FROM $db.events_per_minute WHERE minute >= toDateTime(?){agency}
GROUP BY hour, agency, class_uid ORDER BY hour, agency, class_uid LIMIT ?`},
	"detections": {sql: `SELECT time, agency, rule_level, rule_id, rule_title, toString(event_id) AS event_id
FROM $db.detections WHERE time >= toDateTime(?){agency}
ORDER BY time DESC LIMIT ?`},
	"detections-per-rule": {sql: `SELECT rule_id, rule_level, sum(detections) AS detections
FROM $db.detections_per_rule_day WHERE day >= toDate(toDateTime(?)){agency}
GROUP BY rule_id, rule_level ORDER BY detections DESC, rule_id LIMIT ?`},
	"dead-letters": {sql: `SELECT received, agency, format, subject, record_index, reason
FROM $db.dead_letters WHERE received >= toDateTime(?){agency}
ORDER BY received DESC LIMIT ?`},
	"event": {sql: `SELECT * FROM $db.events WHERE event_id = toUUID(?){agency} LIMIT ?`, arg: true},
}

func cmdQuery(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// The query (and its argument) come first; flags follow.
	var positional []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		positional, args = append(positional, args[0]), args[1:]
	}
	var cfg config
	fs := flagSet("query", &cfg, false)
	agency := fs.String("agency", "", "scope a named query to one agency")
	since := fs.Duration("since", 24*time.Hour, "how far back a named query looks")
	limit := fs.Int("limit", 20, "rows a named query returns (1 to 10000)")
	format := fs.String("format", "table", "output: table, csv or json")
	if help, err := parseFlags(fs, args, getenv, stdout, queryUsage); help || err != nil {
		return err
	}
	if err := cfg.validate(false); err != nil {
		return err
	}
	if len(positional) == 0 {
		fmt.Fprint(stderr, queryUsage)
		return usageError{errors.New("query: a named query or SQL is required")}
	}
	if *format != "table" && *format != "csv" && *format != "json" {
		return usageError{fmt.Errorf("format must be table, csv or json, got %q", *format)}
	}
	if *limit < 1 || *limit > 10000 {
		return usageError{fmt.Errorf("limit must be between 1 and 10000, got %d", *limit)}
	}
	if *since <= 0 {
		return usageError{fmt.Errorf("since must be positive, got %s", *since)}
	}
	sql, params, vertical, err := buildQuery(positional, cfg.Sink.Database, *agency, time.Now().Add(-*since), *limit)
	if err != nil {
		return usageError{err}
	}
	s, err := openSink(ctx, &cfg, newLogger(stderr, &cfg))
	if err != nil {
		return err
	}
	defer s.Close()
	rows, err := s.Conn().Query(ctx, sql, params...)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	cols := rows.Columns()
	types := rows.ColumnTypes()
	var table [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			return fmt.Errorf("query: read row: %w", err)
		}
		for i := range vals {
			vals[i] = reflect.ValueOf(vals[i]).Elem().Interface()
		}
		table = append(table, vals)
		if len(table) > 100000 {
			return errors.New("query: more than 100000 rows: add a LIMIT")
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return printRows(stdout, *format, vertical, cols, table)
}

// buildQuery returns the SQL and its parameters for the positional args.
func buildQuery(pos []string, db, agency string, since time.Time, limit int) (string, []any, bool, error) {
	nq, named := namedQueries[pos[0]]
	if !named {
		if len(pos) > 1 {
			return "", nil, false, fmt.Errorf("query: unknown named query %q (see --help); quote raw SQL as one argument", pos[0])
		}
		if agency != "" {
			return "", nil, false, errors.New("query: --agency scopes named queries only; raw SQL is scoped by the login (connect as analyst_<agency>)")
		}
		first := strings.ToUpper(strings.Fields(strings.TrimSpace(pos[0]) + " x")[0])
		switch first {
		case "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS":
		default:
			if strings.ContainsAny(pos[0], " \n") {
				return "", nil, false, fmt.Errorf("query: raw SQL must be a SELECT, WITH, SHOW, DESCRIBE or EXISTS statement, got %s", first)
			}
			return "", nil, false, fmt.Errorf("query: unknown named query %q (see --help)", pos[0])
		}
		return pos[0], nil, false, nil
	}
	if nq.arg != (len(pos) == 2) || len(pos) > 2 {
		if nq.arg {
			return "", nil, false, fmt.Errorf("query %s: one argument is required", pos[0])
		}
		return "", nil, false, fmt.Errorf("query %s takes no argument", pos[0])
	}
	sql := strings.ReplaceAll(nq.sql, "$db", db)
	var params []any
	if nq.arg {
		if _, err := uuid.Parse(pos[1]); err != nil {
			return "", nil, false, fmt.Errorf("query %s: %q is not an event id (UUID): %w", pos[0], pos[1], err)
		}
		params = append(params, pos[1])
	} else {
		params = append(params, since.Unix())
	}
	if agency != "" {
		sql = strings.ReplaceAll(sql, "{agency}", " AND agency = ?")
		params = append(params, agency)
	} else {
		sql = strings.ReplaceAll(sql, "{agency}", "")
	}
	params = append(params, limit)
	return sql, params, nq.arg, nil
}

func cell(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.000")
	case uuid.UUID:
		return x.String()
	case []string, []uint8, []uint32, []uint64, []int32:
		if b, ok := v.([]uint8); ok {
			ints := make([]int, len(b))
			for i := range b {
				ints[i] = int(b[i])
			}
			v = ints
		}
		out, _ := json.Marshal(v)
		return string(out)
	case map[string]string:
		out, _ := json.Marshal(x) // keys sorted
		return string(out)
	}
	return v
}

func printRows(w io.Writer, format string, vertical bool, cols []string, table [][]any) error {
	switch format {
	case "json":
		out := make([]map[string]any, len(table))
		for i, row := range table {
			m := make(map[string]any, len(cols))
			for j, c := range cols {
				switch v := row[j].(type) {
				case time.Time, uuid.UUID:
					m[c] = cell(v)
				default:
					m[c] = v
				}
			}
			out[i] = m
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(cols); err != nil {
			return err
		}
		rec := make([]string, len(cols))
		for _, row := range table {
			for j := range row {
				rec[j] = fmt.Sprint(cell(row[j]))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if vertical {
		for i, row := range table {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			for j, c := range cols {
				fmt.Fprintf(tw, "%s\t%s\n", c, oneLine(fmt.Sprint(cell(row[j]))))
			}
		}
	} else {
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
		for _, row := range table {
			for j := range row {
				if j > 0 {
					fmt.Fprint(tw, "\t")
				}
				fmt.Fprint(tw, oneLine(fmt.Sprint(cell(row[j]))))
			}
			fmt.Fprintln(tw)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !vertical {
		fmt.Fprintf(w, "(%d rows)\n", len(table))
	}
	return nil
}

// oneLine keeps a cell on its line in the table output.
func oneLine(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.NewReplacer("\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(s)
}
