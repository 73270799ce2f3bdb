package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// Per-agency isolation. An agency's analyst login reads only that agency's
// rows of every table in schemas.TenantTables; the service-wide analyst
// reads all rows. Both are read-only (readonly=1: no writes, no DDL, no
// settings changes, no table functions such as remote() or merge()).
//
// On servers with SQL access control (20.5+) this is CREATE USER plus one
// ROW POLICY per table (USING agency = '<agency>'), and an unrestricted
// policy for everyone else (service analysts, the sink's own user).
//
// Debian's 18.16 has neither SQL users nor row filters (its users.xml
// <databases> filter does not exist yet, and a VIEW is checked against the
// caller's databases). Two designs were tried there: a per-agency database
// of Distributed tables reading filtered views over loopback as an internal
// user leaks, because a plain IN (SELECT ... FROM <db>.events) subquery is
// forwarded to the remote side and runs with the internal user's rights.
// What ships instead: the agency's analyst gets a database of its own,
// <db>_<agency>, holding a copy of every tenant table (same engine, sort key
// and partitions) filled by materialized views in <db> that keep only the
// agency's rows, and backfilled once. The analyst may use only that
// database (allow_databases), so no query can name a table holding other
// agencies' rows. The cost: on 18.16 every row is stored twice (once in
// <db>, once in its agency's copy) and every insert feeds one more view per
// agency; production runs row policies and pays nothing. Users are server
// config on 18.16, so AddTenant writes a users.d/ file beside the server's
// users.xml; the server reloads it by itself within seconds.

// TenantSpec describes one agency's analyst login.
type TenantSpec struct {
	Agency   string
	Password string // the analyst's password; stored only as SHA-256
	// Networks the analyst may connect from (CIDR or IP); default loopback.
	Networks []string
	// ConfigDir is the directory of the server's config.xml and users.xml
	// (18.16 only): AddTenant writes config.d/ and users.d/ files there.
	ConfigDir string
}

// Validate names the first bad field.
func (t TenantSpec) Validate() error {
	if err := ValidateAgency(t.Agency); err != nil {
		return err
	}
	if len(t.Password) < 12 {
		return fmt.Errorf("tenant password must be at least 12 characters")
	}
	for _, n := range t.Networks {
		if _, _, err := net.ParseCIDR(n); err != nil && net.ParseIP(n) == nil {
			return fmt.Errorf("tenant network %q must be an IP or CIDR", n)
		}
	}
	return nil
}

// ValidateAgency checks an agency token: [a-z0-9][a-z0-9_-]*, at most 64
// bytes (the same rule as subjects, so it is safe inside SQL quotes and
// identifiers once '-' becomes '_').
func ValidateAgency(a string) error {
	if a == "" || len(a) > 64 {
		return fmt.Errorf("agency %q must be 1 to 64 characters", a)
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')) {
			return fmt.Errorf("agency %q must match [a-z0-9][a-z0-9_-]*", a)
		}
	}
	return nil
}

func ident(agency string) string { return strings.ReplaceAll(agency, "-", "_") }

// TenantUser is the login name of an agency's analyst.
func TenantUser(agency string) string { return "analyst_" + ident(agency) }

// TenantDatabase is the database an agency's analyst queries on servers
// without row policies (on current servers analysts query the main
// database and row policies filter it).
func TenantDatabase(db, agency string) string { return db + "_" + ident(agency) }

// ServiceAnalyst is the login name of the service-wide analyst.
const ServiceAnalyst = "analyst_service"

const agencyRole = "wf_agency_analyst"

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// RowPolicyStatements is the SQL for an agency analyst on a server with SQL
// access control. Every statement is idempotent.
func RowPolicyStatements(db string, t TenantSpec) []string {
	user := TenantUser(t.Agency)
	var out []string
	out = append(out, "CREATE ROLE IF NOT EXISTS "+agencyRole)
	for _, tb := range schemas.TenantTables {
		// Row policies are permissive and, once a table has one, users
		// without any see nothing: everyone but agency analysts (the
		// sink, service analysts) gets every row.
		out = append(out, fmt.Sprintf("CREATE ROW POLICY IF NOT EXISTS wf_unrestricted ON %s.%s FOR SELECT USING 1 TO ALL EXCEPT %s", db, tb, agencyRole))
	}
	out = append(out,
		fmt.Sprintf("CREATE USER IF NOT EXISTS %s IDENTIFIED WITH sha256_hash BY '%s'%s SETTINGS readonly = 1", user, sha256hex(t.Password), hostClause(t.Networks)),
		fmt.Sprintf("GRANT %s TO %s", agencyRole, user),
	)
	for _, tb := range schemas.TenantTables {
		// SELECT on the tenant tables only, not <db>.*: no route through
		// the materialized views' names or other tables.
		out = append(out, fmt.Sprintf("GRANT SELECT ON %s.%s TO %s", db, tb, user))
	}
	for _, tb := range schemas.TenantTables {
		out = append(out, fmt.Sprintf("CREATE ROW POLICY IF NOT EXISTS wf_agency_%s ON %s.%s FOR SELECT USING agency = '%s' TO %s", ident(t.Agency), db, tb, t.Agency, user))
	}
	return out
}

// ServiceAnalystStatements is the SQL for the service-wide analyst on a
// server with SQL access control.
func ServiceAnalystStatements(db, password string, networks []string) []string {
	out := []string{
		fmt.Sprintf("CREATE USER IF NOT EXISTS %s IDENTIFIED WITH sha256_hash BY '%s'%s SETTINGS readonly = 1", ServiceAnalyst, sha256hex(password), hostClause(networks)),
		fmt.Sprintf("GRANT SELECT ON %s.* TO %s", db, ServiceAnalyst),
	}
	for _, tb := range schemas.TenantTables {
		out = append(out, fmt.Sprintf("CREATE ROW POLICY IF NOT EXISTS wf_unrestricted ON %s.%s FOR SELECT USING 1 TO ALL EXCEPT %s", db, tb, agencyRole))
	}
	return out
}

func hostClause(networks []string) string {
	if len(networks) == 0 {
		return " HOST LOCAL"
	}
	q := make([]string, len(networks))
	for i, n := range networks {
		q[i] = "'" + n + "'"
	}
	return " HOST IP " + strings.Join(q, ", ")
}

// LegacyTenantFile returns the users.d file (name relative to the config
// dir, content) of an agency analyst on a server without row policies.
func LegacyTenantFile(db string, t TenantSpec) (name, content string) {
	user := TenantUser(t.Agency)
	return filepath.Join("users.d", "watchfloor_tenant_"+ident(t.Agency)+".xml"), fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by 'watchfloor tenant add %s'. -->
<yandex>
    <profiles><wf_analyst><readonly>1</readonly></wf_analyst></profiles>
    <users>
        <%s>
            <password_sha256_hex>%s</password_sha256_hex>
            <networks>%s</networks>
            <profile>wf_analyst</profile>
            <quota>default</quota>
            <allow_databases><database>%s</database></allow_databases>
        </%s>
    </users>
</yandex>
`, t.Agency, user, sha256hex(t.Password), networksXML(t.Networks), TenantDatabase(db, t.Agency), user)
}

// LegacyServiceAnalystFile is the users.d file of the service-wide analyst
// on a server without SQL users.
func LegacyServiceAnalystFile(db, password string, networks []string) (name, content string) {
	return filepath.Join("users.d", "watchfloor_service_analyst.xml"), fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by 'watchfloor tenant service-analyst'. -->
<yandex>
    <profiles><wf_analyst><readonly>1</readonly></wf_analyst></profiles>
    <users>
        <%s>
            <password_sha256_hex>%s</password_sha256_hex>
            <networks>%s</networks>
            <profile>wf_analyst</profile>
            <quota>default</quota>
            <allow_databases><database>%s</database></allow_databases>
        </%s>
    </users>
</yandex>
`, ServiceAnalyst, sha256hex(password), networksXML(networks), db, ServiceAnalyst)
}

func networksXML(networks []string) string {
	if len(networks) == 0 {
		return "<ip>127.0.0.1</ip><ip>::1</ip>"
	}
	var b strings.Builder
	for _, n := range networks {
		b.WriteString("<ip>" + xmlEscape(n) + "</ip>")
	}
	return b.String()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

// tenantCopy is one table an agency's copy database holds, and the
// SELECT (over <db>.<source>) that feeds it.
type tenantCopy struct {
	table, source, cols, sel string
}

// stored are the columns that tell when a base table's row was stored and
// which row it is.
var stored = map[string][2]string{
	"events":       {"ingested_at", "event_id"},
	"detections":   {"created_at", "detection_id"},
	"dead_letters": {"stored_at", "dead_letter_id"},
}

func tenantCopies(f schemas.Features) []tenantCopy {
	out := []tenantCopy{
		{"events", "events", schemas.ColumnNames(schemas.EventColumns) + ", ingested_at", ""},
		{"detections", "detections", schemas.ColumnNames(schemas.FindingColumns) + ", created_at", ""},
		{"dead_letters", "dead_letters", schemas.ColumnNames(schemas.DeadLetterColumns) + ", stored_at", ""},
	}
	for i := range out {
		out[i].sel = "SELECT " + out[i].cols + " FROM {src}"
	}
	for _, r := range schemas.Rollups(f) {
		var names []string
		for _, c := range strings.Split(r.Columns, ", ") {
			names = append(names, strings.Fields(c)[0])
		}
		out = append(out, tenantCopy{r.Table, r.Source, strings.Join(names, ", "), r.Select})
	}
	return out
}

// withCondition adds cond to the WHERE clause of sel.
func withCondition(sel, cond string) string {
	if strings.Contains(sel, " WHERE ") {
		return strings.Replace(sel, " WHERE ", " WHERE "+cond+" AND ", 1)
	}
	if strings.Contains(sel, " GROUP BY ") {
		return strings.Replace(sel, " GROUP BY ", " WHERE "+cond+" GROUP BY ", 1)
	}
	return sel + " WHERE " + cond
}

// LegacyTenantStatements is the DDL of an agency's copy database on a server
// without row policies: the copies, the views that feed them, and the
// backfill of the rows stored before the views existed. cut is the server's
// time read before the views were created (second precision, as
// ingested_at): rows stored before cut are backfilled, and rows stored since
// only when the views did not copy them already (their id is not in the
// copy). Rollups are backfilled before base tables, so that check sees
// only what the views copied. A row stored while the backfill itself scans
// could still be counted twice in a tenant rollup: a window of
// milliseconds, once per tenant.
func LegacyTenantStatements(db, agency string, f schemas.Features, cut time.Time) []string {
	tdb := TenantDatabase(db, agency)
	out := []string{"CREATE DATABASE IF NOT EXISTS " + tdb}
	var rollupFill, baseFill []string
	at := cut.UTC().Format(time.DateTime)
	for _, c := range tenantCopies(f) {
		source := db + "." + c.source
		sel := strings.ReplaceAll(withCondition(c.sel, "agency = '"+agency+"'"), "{src}", source)
		mv := fmt.Sprintf("%s.tenant_%s_%s_mv", db, ident(agency), c.table)
		out = append(out,
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s AS %s.%s", tdb, c.table, db, c.table),
			fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s TO %s.%s AS %s", mv, tdb, c.table, sel))
		st := stored[c.source]
		before := fmt.Sprintf("agency = '%s' AND (%s < toDateTime('%s', 'UTC') OR %s NOT IN (SELECT %s FROM %s.%s))",
			agency, st[0], at, st[1], st[1], tdb, c.source)
		fill := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT * FROM (%s)", tdb, c.table, c.cols,
			strings.ReplaceAll(withCondition(c.sel, before), "{src}", source))
		if c.table == c.source {
			baseFill = append(baseFill, fill)
		} else {
			rollupFill = append(rollupFill, fill)
		}
	}
	out = append(out, rollupFill...)
	return append(out, baseFill...)
}

// AddTenant creates an agency's analyst login limited to the agency's rows,
// and returns the database the analyst queries. Re-running it for an
// existing agency only updates the login (password, networks).
func (s *Sink) AddTenant(ctx context.Context, t TenantSpec) (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	db := s.cfg.Database
	if s.features.RowPolicies {
		for _, q := range RowPolicyStatements(db, t) {
			if err := s.conn.Exec(ctx, q); err != nil {
				return "", fmt.Errorf("tenant %s: %s: %w", t.Agency, strings.SplitN(q, " BY ", 2)[0], err)
			}
		}
		return db, nil
	}
	if t.ConfigDir == "" {
		return "", fmt.Errorf("tenant %s: ClickHouse %d.%d has no row policies: --config-dir must name the server's config directory (where users.xml is)", t.Agency, s.features.Version[0], s.features.Version[1])
	}
	tdb := TenantDatabase(db, t.Agency)
	var exists uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", tdb).Scan(&exists); err != nil {
		return "", fmt.Errorf("tenant %s: %w", t.Agency, err)
	}
	if exists == 0 {
		// A new copy database: views first, then the backfill of what was
		// stored before them. (When the database exists, its views are
		// there already and a second backfill would double its rows.)
		// The cut is read before the views exist (see LegacyTenantStatements).
		var cut time.Time
		if err := s.conn.QueryRow(ctx, "SELECT now()").Scan(&cut); err != nil {
			return "", fmt.Errorf("tenant %s: read server time: %w", t.Agency, err)
		}
		for _, q := range LegacyTenantStatements(db, t.Agency, s.features, cut) {
			if err := s.conn.Exec(ctx, q); err != nil {
				return "", fmt.Errorf("tenant %s: %s: %w", t.Agency, firstLine(q), err)
			}
		}
	}
	name, content := LegacyTenantFile(db, t)
	if err := writeFiles(t.ConfigDir, map[string]string{name: content}); err != nil {
		return "", fmt.Errorf("tenant %s: %w", t.Agency, err)
	}
	return tdb, nil
}

// AddServiceAnalyst creates the service-wide analyst login (all agencies,
// read-only).
func (s *Sink) AddServiceAnalyst(ctx context.Context, password string, networks []string, configDir string) error {
	if len(password) < 12 {
		return fmt.Errorf("service analyst password must be at least 12 characters")
	}
	if s.features.RowPolicies {
		for _, q := range ServiceAnalystStatements(s.cfg.Database, password, networks) {
			if err := s.conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("service analyst: %s: %w", strings.SplitN(q, " BY ", 2)[0], err)
			}
		}
		return nil
	}
	if configDir == "" {
		return fmt.Errorf("service analyst: ClickHouse %d.%d has no SQL users: --config-dir must name the server's config directory", s.features.Version[0], s.features.Version[1])
	}
	name, content := LegacyServiceAnalystFile(s.cfg.Database, password, networks)
	return writeFiles(configDir, map[string]string{name: content})
}

func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		// Write then rename, so the server never reloads half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o640); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
