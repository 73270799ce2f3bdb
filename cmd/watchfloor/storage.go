package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

const ddlUsage = `Usage: watchfloor ddl [flags]

Prints the ClickHouse DDL of the whole schema (every migration step, in
order) for a server version, without connecting. With --cluster NAME it
prints the cluster variant: every statement ON CLUSTER NAME, Replicated*
engines on <table>_local tables (ZooKeeper/Keeper paths
/clickhouse/tables/{shard}/<db>/<table>_local, replica {replica}), and
Distributed tables under the plain names, sharded by the row id so that
redelivered copies of a row meet on one shard and collapse.

Example:
  watchfloor ddl --cluster soc --server-version 23.8 > schema.sql
`

func cmdDDL(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flagSet("ddl", &cfg, false)
	cluster := fs.String("cluster", "", "cluster name for the Replicated*/Distributed variant (empty: single server)")
	version := fs.String("server-version", "23.8", "ClickHouse version the DDL is for (18.16 gives the fallback)")
	if help, err := parseFlags(fs, args, getenv, stdout, ddlUsage); help || err != nil {
		return err
	}
	if err := cfg.Sink.Validate(); err != nil {
		return usageError{err}
	}
	if *cluster != "" && !identOK(*cluster) {
		return usageError{fmt.Errorf("cluster %q must be an identifier of [A-Za-z0-9_]", *cluster)}
	}
	f, err := schemas.FeaturesFor(*version)
	if err != nil {
		return usageError{fmt.Errorf("server-version: %w", err)}
	}
	o := schemas.DDLOptions{
		Database: cfg.Sink.Database, Features: f, Cluster: *cluster,
		EventRetentionDays:      cfg.Sink.EventRetentionDays,
		DetectionRetentionDays:  cfg.Sink.DetectionRetentionDays,
		DeadLetterRetentionDays: cfg.Sink.DeadLetterRetentionDays,
	}
	fmt.Fprintf(stdout, "-- Watchfloor schema for ClickHouse %s, database %s", *version, o.Database)
	if o.Cluster != "" {
		fmt.Fprintf(stdout, ", cluster %s", o.Cluster)
	}
	fmt.Fprintln(stdout)
	for _, m := range schemas.Migrations() {
		fmt.Fprintf(stdout, "\n-- step %d: %s\n", m.Version, m.Name)
		if m.Name == schemas.BackfillStep {
			fmt.Fprintln(stdout, "-- (a data step: 'watchfloor migrate' fills the rollups from rows stored before their views)")
		}
		for _, st := range m.Statements(o) {
			fmt.Fprintf(stdout, "%s;\n\n", st.SQL)
		}
	}
	return nil
}

func identOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

const tenantUsage = `Usage:
  watchfloor tenant add AGENCY [flags]        create AGENCY's read-only analyst login
  watchfloor tenant service-analyst [flags]   create the service-wide read-only analyst

An agency's analyst (login analyst_<agency>, '-' as '_') reads only that
agency's rows of events, detections, dead_letters and the rollups. On
ClickHouse 20.5+ this is a SQL user with row policies. On Debian's 18.16
(no SQL users, no row filters) the analyst gets its own database
<db>_<agency> of copies fed by materialized views, and a users.d/ file is
written under --config-dir (the directory of the server's users.xml); the
server loads it within seconds.

The password comes from WATCHFLOOR_TENANT_PASSWORD; when empty one is
generated and printed once on stdout. It is stored only as SHA-256.
`

func cmdTenant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, tenantUsage)
		if len(args) == 0 {
			return usageError{errors.New("tenant: want add AGENCY or service-analyst")}
		}
		return nil
	}
	sub := args[0]
	args = args[1:]
	var agency string
	switch sub {
	case "add":
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return usageError{errors.New("tenant add: the AGENCY argument is required")}
		}
		agency, args = args[0], args[1:]
		if err := sink.ValidateAgency(agency); err != nil {
			return usageError{fmt.Errorf("tenant add: %w", err)}
		}
	case "service-analyst":
	default:
		return usageError{fmt.Errorf("tenant: unknown subcommand %q: want add or service-analyst", sub)}
	}
	var cfg config
	fs := flagSet("tenant", &cfg, false)
	configDir := fs.String("config-dir", "", "directory of the server's users.xml (18.16: users.d/ is written there)")
	var networks listValue
	fs.Var(&networks, "networks", "IPs/CIDRs the analyst may connect from, comma-separated (default loopback)")
	if help, err := parseFlags(fs, args, getenv, stdout, tenantUsage); help || err != nil {
		return err
	}
	if err := cfg.validate(false); err != nil {
		return err
	}
	password := getenv("WATCHFLOOR_TENANT_PASSWORD")
	generated := password == ""
	if generated {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("generate password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b[:])
	}
	log := newLogger(stderr, &cfg)
	s, err := openSink(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		return err
	}
	user, db := sink.ServiceAnalyst, cfg.Sink.Database
	if sub == "add" {
		user = sink.TenantUser(agency)
		db, err = s.AddTenant(ctx, sink.TenantSpec{Agency: agency, Password: password, Networks: networks, ConfigDir: *configDir})
	} else {
		err = s.AddServiceAnalyst(ctx, password, networks, *configDir)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s reads database %s (read-only)\n", user, db)
	if generated {
		fmt.Fprintf(stdout, "password %s\n(shown once; set WATCHFLOOR_TENANT_PASSWORD to choose it)\n", password)
	}
	return nil
}

const retentionUsage = `Usage: watchfloor retention [flags]

Drops every partition whose rows are all older than its table's retention
(--clickhouse.event-retention-days & co; rollups follow the table they
summarize), in the main database and in the agencies' copy databases.
Needed on servers without TTL (18.16); harmless on current ones. Run it
daily (cron or a systemd timer), or let 'run' call it.
`

func cmdRetention(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flagSet("retention", &cfg, false)
	if help, err := parseFlags(fs, args, getenv, stdout, retentionUsage); help || err != nil {
		return err
	}
	if err := cfg.validate(false); err != nil {
		return err
	}
	s, err := openSink(ctx, &cfg, newLogger(stderr, &cfg))
	if err != nil {
		return err
	}
	defer s.Close()
	dropped, err := s.DropExpired(ctx, time.Now())
	for _, d := range dropped {
		fmt.Fprintf(stdout, "dropped %s.%s partition %s\n", d.Database, d.Table, d.Partition)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d partition(s) dropped\n", len(dropped))
	return nil
}
