// Package chtest gives integration tests a fresh database on the project's
// real ClickHouse server (started by `make test` through
// deploy/local/clickhouse.sh). Tests skip with a message when no server is
// configured, and fail instead when WATCHFLOOR_REQUIRE_CLICKHOUSE=1 (as in
// `make test` and CI) so a broken setup can never pass as "all skipped".
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// EnvAddr names the variable holding the test server's host:port.
const EnvAddr = "WATCHFLOOR_TEST_CLICKHOUSE"

// Addr returns the test server address or skips/fails the test.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		if os.Getenv("WATCHFLOOR_REQUIRE_CLICKHOUSE") == "1" {
			t.Fatalf("%s is not set but WATCHFLOOR_REQUIRE_CLICKHOUSE=1: start one with `make clickhouse-test`", EnvAddr)
		}
		t.Skipf("no ClickHouse for integration tests: set %s=host:port (make test does)", EnvAddr)
	}
	return addr
}

// Database creates a fresh, uniquely named database and drops it when the
// test ends. It returns the address and the database name.
func Database(t testing.TB) (addr, db string) {
	t.Helper()
	addr = Addr(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	db = "wftest_" + hex.EncodeToString(b[:])
	conn := Conn(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create test database %s on %s: %v", db, addr, err)
	}
	t.Cleanup(func() {
		if os.Getenv("WATCHFLOOR_KEEP_TEST_DB") == "1" {
			t.Logf("keeping test database %s", db)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	})
	return addr, db
}

// Conn opens a connection closed at the end of the test.
func Conn(t testing.TB, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Count runs a count query and returns the number.
func Count(t testing.TB, conn driver.Conn, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
