package sink_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// privateServer starts a ClickHouse server of the test's own (the project's
// deploy/local/clickhouse.sh, data in a temp dir), because isolation on
// 18.16 is server config that a test must not write into the shared server.
func privateServer(t *testing.T) (addr, dir string) {
	t.Helper()
	chtest.Addr(t) // skip or fail like every integration test
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if os.Getenv("WATCHFLOOR_REQUIRE_CLICKHOUSE") == "1" {
			t.Fatalf("clickhouse-server is not on PATH: %v", err)
		}
		t.Skip("clickhouse-server is not on PATH")
	}
	ports := make([]int, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	dir = t.TempDir()
	script, _ := filepath.Abs("../deploy/local/clickhouse.sh")
	out, err := exec.Command(script, "start", dir, fmt.Sprint(ports[0]), fmt.Sprint(ports[1])).CombinedOutput()
	if err != nil {
		t.Fatalf("start private clickhouse: %v\n%s", err, out)
	}
	// Stop by the server's own pid: Debian's 18.16 ignores the script's
	// --pid-file (it reads --pidfile), so the script's stop cannot find it.
	pid := serverPID(dir + "/config.xml")
	if pid == 0 {
		t.Fatalf("started a private clickhouse in %s but cannot find its process", dir)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	})
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), dir
}

// serverPID finds the clickhouse-server started with this config file.
func serverPID(config string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), "--config-file="+config+"\x00") {
			return pid
		}
	}
	return 0
}

func login(t *testing.T, addr, user, password string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: password}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// users.d files are picked up by the server within a few seconds.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := conn.Ping(context.Background())
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("login %s: %v", user, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestTenantIsolation(t *testing.T) {
	addr, dir := privateServer(t)
	ctx := context.Background()
	cfg := sink.DefaultConfig()
	cfg.Addr = []string{addr}
	s, err := sink.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows := &sink.Rows{}
	at := time.Now().UTC().Add(-time.Hour)
	for i := 0; i < 40; i++ {
		agency := []string{"agency-a", "agency-b"}[i%2]
		ev := dnsEvent(agency, i, at, agency+".example", 3)
		rows.Events = append(rows.Events, ev)
		rows.Findings = append(rows.Findings, schemas.Finding{ID: schemas.FindingID(ev.ID, "r"), EventID: ev.ID, Agency: agency, Time: at, RuleID: "r", RuleLevel: "high"})
		rows.DeadLetters = append(rows.DeadLetters, schemas.DeadLetter{ID: ev.ID, Agency: agency, Reason: "x", Raw: agency, Received: at})
	}
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	const passA, passB, passS = "analyst-a-password", "analyst-b-password", "service-password"
	dbA, err := s.AddTenant(ctx, sink.TenantSpec{Agency: "agency-a", Password: passA, ConfigDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddTenant(ctx, sink.TenantSpec{Agency: "agency-b", Password: passB, ConfigDir: dir}); err != nil {
		t.Fatal(err)
	}
	// Re-adding is idempotent.
	if _, err := s.AddTenant(ctx, sink.TenantSpec{Agency: "agency-a", Password: passA, ConfigDir: dir}); err != nil {
		t.Fatalf("second AddTenant: %v", err)
	}
	if err := s.AddServiceAnalyst(ctx, passS, nil, dir); err != nil {
		t.Fatal(err)
	}
	// Rows stored after the tenant exists reach its copy through the views.
	later := &sink.Rows{}
	for i := 100; i < 130; i++ {
		later.Events = append(later.Events, dnsEvent([]string{"agency-a", "agency-b"}[i%2], i, at, "later.example", 0))
	}
	if err := s.Write(ctx, later); err != nil {
		t.Fatal(err)
	}
	a := login(t, addr, sink.TenantUser("agency-a"), passA)
	svc := login(t, addr, sink.ServiceAnalyst, passS)

	t.Run("own rows in every table", func(t *testing.T) {
		var n uint64
		if err := a.QueryRow(ctx, "SELECT sum(events) FROM "+dbA+".events_per_minute").Scan(&n); err != nil || n != 35 {
			t.Errorf("agency-a's events_per_minute sums to %d (%v), want 20 + 15", n, err)
		}
		for _, tb := range schemas.TenantTables {
			q := fmt.Sprintf("SELECT countIf(agency = 'agency-a'), countIf(agency != 'agency-a') FROM %s.%s", dbA, tb)
			var own, other uint64
			if err := a.QueryRow(ctx, q).Scan(&own, &other); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if own == 0 || other != 0 {
				t.Errorf("%s: own rows %d (want > 0), other agencies' rows %d (want 0)", tb, own, other)
			}
			// The copy holds exactly the agency's rows: none missed, none twice.
			// (Rollup row counts depend on merges; their sums are checked above.)
			if tb != "events" && tb != "detections" && tb != "dead_letters" {
				continue
			}
			var want uint64
			if err := svc.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM watchfloor.%s WHERE agency = 'agency-a'", tb)).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if own != want {
				t.Errorf("%s: agency-a's analyst sees %d rows, the table has %d of agency-a", tb, own, want)
			}
		}
	})

	// Every route to agency-b's rows that we could think of fails.
	routes := []string{
		"SELECT count() FROM watchfloor.events",
		"SELECT count() FROM watchfloor.events_per_minute",
		"SELECT count() FROM watchfloor.dns_per_domain_hour_mv",
		"SELECT count() FROM watchfloor.tenant_agency_b_events_mv",
		"SELECT count() FROM " + dbA + ".events WHERE agency IN (SELECT agency FROM watchfloor_agency_b.events)",
		"SELECT count() FROM " + dbA + ".events WHERE agency IN (SELECT agency FROM " + dbA + ".events GLOBAL ANY LEFT JOIN watchfloor.events USING event_id)",
		"SELECT count() FROM watchfloor_agency_b.events",
		"SELECT count() FROM " + dbA + ".events WHERE agency IN (SELECT agency FROM watchfloor.events)",
		"SELECT count() FROM " + dbA + ".events AS x ALL INNER JOIN watchfloor.events AS y USING event_id",
		"SELECT count() FROM remote('" + addr + "', watchfloor.events)",
		"SELECT count() FROM remote('" + addr + "', watchfloor.events, 'analyst_agency_b', 'analyst-b-password')",
		"SELECT count() FROM merge('watchfloor', '^events$')",
		"SELECT count() FROM url('http://127.0.0.1:8123/?query=SELECT+1', CSV, 'x UInt8')",
		"SELECT count() FROM " + dbA + ".events SETTINGS readonly = 0",
		"SET readonly = 0",
		"CREATE TABLE " + dbA + ".steal AS watchfloor.events ENGINE = Merge(watchfloor, '^events$')",
		"CREATE VIEW " + dbA + ".steal AS SELECT * FROM watchfloor.events",
		"INSERT INTO " + dbA + ".events (agency) VALUES ('agency-b')",
		"ALTER TABLE " + dbA + ".events DELETE WHERE 1",
	}
	for _, q := range routes {
		t.Run(q, func(t *testing.T) {
			var n uint64
			err := a.QueryRow(ctx, q).Scan(&n)
			if strings.HasPrefix(q, "SET") || strings.HasPrefix(q, "CREATE") || strings.HasPrefix(q, "INSERT") || strings.HasPrefix(q, "ALTER") {
				err = a.Exec(ctx, q)
			}
			if err == nil {
				t.Errorf("analyst of agency-a ran %q (n=%d), want refused", q, n)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: sink.TenantUser("agency-a"), Password: passB}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Ping(ctx); err == nil {
			t.Error("agency-a's login accepted agency-b's password")
		}
	})
	t.Run("service-wide analyst sees every agency", func(t *testing.T) {
		var agencies uint64
		if err := svc.QueryRow(ctx, "SELECT uniqExact(agency) FROM watchfloor.events").Scan(&agencies); err != nil {
			t.Fatal(err)
		}
		if agencies != 2 {
			t.Errorf("service analyst sees %d agencies, want 2", agencies)
		}
		if err := svc.Exec(ctx, "INSERT INTO watchfloor.events (agency) VALUES ('x')"); err == nil {
			t.Error("service analyst could insert")
		}
	})
}

func TestRowPolicyStatements(t *testing.T) {
	got := sink.RowPolicyStatements("watchfloor", sink.TenantSpec{Agency: "agency-a", Password: "analyst-a-password", Networks: []string{"10.1.0.0/16"}})
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"CREATE USER IF NOT EXISTS analyst_agency_a IDENTIFIED WITH sha256_hash BY '",
		"HOST IP '10.1.0.0/16' SETTINGS readonly = 1",
		"GRANT SELECT ON watchfloor.events TO analyst_agency_a",
		"GRANT wf_agency_analyst TO analyst_agency_a",
		"CREATE ROW POLICY IF NOT EXISTS wf_agency_agency_a ON watchfloor.events FOR SELECT USING agency = 'agency-a' TO analyst_agency_a",
		"CREATE ROW POLICY IF NOT EXISTS wf_agency_agency_a ON watchfloor.dns_per_domain_hour FOR SELECT USING agency = 'agency-a' TO analyst_agency_a",
		"CREATE ROW POLICY IF NOT EXISTS wf_unrestricted ON watchfloor.detections FOR SELECT USING 1 TO ALL EXCEPT wf_agency_analyst",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("row policy SQL lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "watchfloor.* TO analyst_agency_a") || strings.Contains(joined, "_mv") {
		t.Error("agency analyst is granted more than the tenant tables")
	}
	if strings.Contains(joined, "analyst-a-password") {
		t.Error("row policy SQL contains the clear-text password")
	}
}
