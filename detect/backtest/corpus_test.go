package backtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/backtest"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/sink"
)

const sigmaCorpus = "../../../shared/corpus/sigma/rules"

// TestCorpusTranslates compiles every SigmaHQ rule the streaming engine
// accepts to SQL, and (with ClickHouse and WATCHFLOOR_LONG=1) runs each
// WHERE clause on an empty events table so ClickHouse 18.16 parses and
// type-checks all of them.
func TestCorpusTranslates(t *testing.T) {
	if _, err := os.Stat(sigmaCorpus); err != nil {
		t.Skipf("SigmaHQ corpus not found at %s: %v", sigmaCorpus, err)
	}
	rules, _ := detect.ParseDir(sigmaCorpus)
	var queries []*backtest.Query
	unsupported := map[string]int{}
	engineRefused := 0
	for _, r := range rules {
		if _, err := detect.Compile([]*detect.Rule{r}, detect.DefaultConfig()); err != nil {
			engineRefused++
			continue
		}
		q, err := backtest.Compile(r, nil)
		var ue *backtest.UnsupportedError
		switch {
		case errors.As(err, &ue):
			unsupported[ue.Feature]++
		case err != nil:
			t.Errorf("%s: %v", r.Source, err)
		default:
			queries = append(queries, q)
		}
	}
	t.Logf("%d corpus rules: %d refused by the engine, %d translated, unsupported by backtest: %v",
		len(rules), engineRefused, len(queries), unsupported)
	// The engine grows (new modifiers) ahead of the translation; a feature
	// it does not cover yet is an UnsupportedError, not a wrong answer.
	// Fail only when that leaves a large part of the corpus untranslated.
	if n := len(rules) - engineRefused; len(queries) < n*9/10 {
		t.Errorf("only %d of %d rules the engine runs translate to SQL; unsupported: %v", len(queries), n, unsupported)
	}
	if os.Getenv(chtest.EnvAddr) == "" || os.Getenv("WATCHFLOOR_LONG") != "1" {
		t.Log("set WATCHFLOOR_LONG=1 (and a ClickHouse) to have the server parse every WHERE clause (minutes)")
		return
	}
	addr, db := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ctx = backtest.WithQuerySettings(ctx)
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
	if err := s.Conn().Exec(ctx, "SELECT count() FROM "+db+".events WHERE nosuchfunction(message)"); err == nil {
		t.Fatal("Exec of a bad SELECT returned no error: this check would prove nothing")
	}
	// Many rules per query keep the round trips few; a failing chunk is
	// retried rule by rule to name the culprit.
	const chunk = 500
	for i := 0; i < len(queries); i += chunk {
		part := queries[i:min(i+chunk, len(queries))]
		sql := "SELECT count() FROM " + db + ".events WHERE 0"
		for _, q := range part {
			sql += " OR (" + q.Where + ")"
		}
		if err := s.Conn().Exec(ctx, sql); err == nil {
			continue
		}
		for _, q := range part {
			if err := s.Conn().Exec(ctx, fmt.Sprintf("SELECT count() FROM %s.events WHERE %s", db, q.Where)); err != nil {
				t.Errorf("rule %s: ClickHouse refuses its SQL: %v\n%s", q.RuleID, err, q.Where)
			}
		}
	}
}
