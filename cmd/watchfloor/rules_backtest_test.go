package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

func TestRulesBacktestCLI(t *testing.T) {
	addr, db := chtest.Database(t)
	ctx := context.Background()
	cfg := sink.DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	s, err := sink.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	var evs []schemas.Event
	for i, q := range []string{"a.cli-test.example", "b.cli-test.example", "c.example", "d.cli-test.example"} {
		ev := schemas.Event{ID: schemas.EventID("bt", i), Agency: []string{"agency-a", "agency-b"}[i%2], Format: "zeek_dns",
			ClassUID: schemas.ClassDNS, Time: now.Add(-time.Duration(i) * 24 * time.Hour), Raw: q}
		ev.DNS.QueryHostname, ev.DNS.RCodeID = q, -1
		evs = append(evs, ev)
	}
	if err := s.Write(ctx, &sink.Rows{Events: evs}); err != nil {
		t.Fatal(err)
	}
	file := writeRule(t, t.TempDir(), "cli", cliRule, "")
	env := map[string]string{"WATCHFLOOR_CLICKHOUSE_ADDR": addr, "WATCHFLOOR_CLICKHOUSE_DATABASE": db}

	out, err := rulesCLI(t, env, "backtest", file, "--since", "30d")
	if err != nil {
		t.Fatalf("backtest: %v\n%s", err, out)
	}
	t.Logf("watchfloor rules backtest %s --since 30d:\n%s", file, out)
	if !strings.Contains(out, "hits 3") || !strings.Contains(out, "agency-a") || strings.Count(out, "sample ") != 3 {
		t.Errorf("backtest output:\n%s", out)
	}
	out, err = rulesCLI(t, env, "backtest", file, "--since", "30d", "--agency", "agency-b", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Results []struct {
			Hits uint64
			Days []struct{ Agency string }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) != 1 || res.Results[0].Hits != 2 || res.Results[0].Days[0].Agency != "agency-b" {
		t.Errorf("backtest --agency agency-b --json = %s (%v)", out, err)
	}
	if _, err := rulesCLI(t, env, "backtest", file, "--since", "30d", "--agency", "Bad Agency"); err == nil {
		t.Error("backtest with a bad agency: error = nil")
	}
}
