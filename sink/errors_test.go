package sink_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/sink"
)

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"nil", nil, false},
		{"marked", sink.Permanent(errors.New("parse zeek dns line 3: bad json")), true},
		{"wrapped mark", fmt.Errorf("batch 7: %w", sink.Permanent(errors.New("x"))), true},
		{"type mismatch", fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 53, Message: "Type mismatch"}), true},
		{"too large string", &clickhouse.Exception{Code: 131}, true},
		{"too many parts", &clickhouse.Exception{Code: 252, Message: "Too many parts"}, false},
		{"memory limit", &clickhouse.Exception{Code: 241}, false},
		{"unknown table", &clickhouse.Exception{Code: 60}, false},
		{"auth", &clickhouse.Exception{Code: 516}, false},
		{"timeout", fmt.Errorf("insert: %w", context.DeadlineExceeded), false},
		{"canceled", context.Canceled, false},
		{"conn refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"unknown", errors.New("something"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sink.IsPermanent(tt.give); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

// TestServerDownIsRetryable writes to a port nobody listens on.
func TestServerDownIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := sink.DefaultConfig()
	cfg.Addr = []string{addr}
	cfg.DialTimeout = 200 * time.Millisecond
	_, err = sink.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
	if sink.IsPermanent(err) {
		t.Errorf("server down classified permanent: %v", err)
	}
}

// TestSchemaMissingIsRetryable: a Write before Migrate fails retryably (a
// missing migration is fixed by the operator; the rows must not become
// dead letters).
func TestSchemaMissingIsRetryable(t *testing.T) {
	addr, db := chtest.Database(t)
	cfg := sink.DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	s, err := sink.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Write(context.Background(), &sink.Rows{Events: dnsBatch(3, 0)})
	if err == nil || sink.IsPermanent(err) {
		t.Errorf("Write without tables = %v, want a retryable error", err)
	}
}
