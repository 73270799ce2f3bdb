package backtest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/backtest"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// agreementRules cover every matcher shape the translation has. Each must
// hit at least one stored event and miss at least one.
var agreementRules = map[string]string{
	"contains":   "logsource: {category: dns}\ndetection:\n  sel:\n    query|contains: 'MSFTNCSI'\n  condition: sel",
	"startswith": "logsource: {category: dns}\ndetection:\n  sel:\n    query|startswith: ['_ldap.', 'WPAD', 'école']\n  condition: sel",
	"endswith":   "logsource: {category: dns}\ndetection:\n  sel:\n    query|endswith: ['.COM', '.net']\n  condition: sel",
	"wildcards":  "logsource: {category: dns}\ndetection:\n  sel:\n    query: ['*.icemaiden*.com', 'dns.?sftncsi.com', '*50%_off*', 'mail.*']\n  condition: sel",
	"all":        "logsource: {category: dns}\ndetection:\n  sel:\n    query|contains|all: ['ldap', 'icemaiden']\n  condition: sel",
	"regex":      "logsource: {category: dns}\ndetection:\n  sel:\n    query|re: '^[a-z]+\\.(aol|yahoo)\\.'\n  sel2:\n    query|re|i: '^DNS\\.MSFT'\n  sel3:\n    query|re: '(?i)^MAIL\\.'\n  condition: 1 of sel*",
	"regex-nl":   "logsource: {product: linux}\ndetection:\n  sel:\n    message|re: 'alpha.beta'\n  condition: sel",
	"cidr":       "logsource: {category: dns}\ndetection:\n  sel:\n    src_ip|cidr: '10.18.20.96/30'\n  ans:\n    answer|cidr: ['69.147.64.0/24', 'fd3e:4f5a::/33']\n  condition: sel and ans",
	"cidr6":      "logsource: {category: dns}\ndetection:\n  sel:\n    answer|cidr: 'fd3e:4f5a:5b81::/48'\n  condition: sel",
	"keywords":   "logsource: {product: linux}\ndetection:\n  keywords:\n    - 'Invalid user'\n    - 'FAILED PASSWORD'\n  condition: keywords",
	"keyw-all":   "logsource: {product: linux}\ndetection:\n  kw:\n    '|all':\n      - 'accepted'\n      - 'publickey'\n  condition: kw",
	"null":       "logsource: {category: dns}\ndetection:\n  sel:\n    answer: null\n    dst_port: 53\n  condition: sel",
	"exists":     "logsource: {category: dns}\ndetection:\n  sel:\n    record_type|exists: true\n    rcode: 'NXDOMAIN'\n  condition: sel",
	"cased-not":  "logsource: {category: dns}\ndetection:\n  sel:\n    query|cased|contains: 'dns'\n  filter:\n    record_type: 'AAAA'\n  condition: sel and not filter",
	"int-port":   "logsource: {category: dns}\ndetection:\n  sel:\n    src_port: ['59102', '5*']\n  condition: sel",
	"unmapped":   "logsource: {product: linux}\ndetection:\n  sel:\n    syslog.severity: info\n  neg:\n    syslog.facility: null\n  condition: sel or neg",
	"windash":    "logsource: {product: linux}\ndetection:\n  sel:\n    message|windash|contains: ' -enc '\n  condition: sel",
	"bare-star":  "logsource: {category: dns}\ndetection:\n  sel:\n    answer: '*'\n    user: ''\n  condition: sel",
	"newline":    "logsource: {product: linux}\ndetection:\n  sel:\n    message: '*alpha*gamma*'\n  condition: sel",
	"escapes":    "logsource: {category: dns}\ndetection:\n  sel:\n    query|contains: ['\\*star', 'back\\\\slash', \"quo'te\"]\n  condition: sel",
}

func TestBacktestAgreesWithStreaming(t *testing.T) {
	addr, db := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
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
	now := time.Now().UTC().Truncate(time.Second)
	events := sampleEvents(t, now)
	if err := s.Write(ctx, &sink.Rows{Events: events}); err != nil {
		t.Fatal(err)
	}
	// An event outside the window must not be found by either side's window.
	old := events[0]
	old.ID, old.Time = schemas.EventID("old", 0), now.AddDate(0, 0, -40)
	if err := s.Write(ctx, &sink.Rows{Events: []schemas.Event{old}}); err != nil {
		t.Fatal(err)
	}
	since := now.AddDate(0, 0, -30)

	names := make([]string, 0, len(agreementRules))
	for n := range agreementRules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			doc := "title: agree " + name + "\nid: agree-" + name + "\nlevel: low\n" + agreementRules[name] + "\n"
			r, err := detect.ParseRule([]byte(doc))
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, doc)
			}
			rs, err := detect.Compile([]*detect.Rule{r}, detect.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range events {
				if len(rs.Eval(&events[i], nil)) > 0 {
					want = append(want, events[i].ID.String())
				}
			}
			sort.Strings(want)
			q, err := backtest.Compile(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := backtest.MatchingIDs(ctx, s.Conn(), q, backtest.Config{Database: db, Since: since})
			if err != nil {
				t.Fatalf("%v\nWHERE %s", err, q.Where)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("backtest ids differ from streaming (-streaming +backtest):\n%s\nWHERE %s\n%s", diff, q.Where, describe(events, want, got))
			}
			if len(want) == 0 || len(want) == len(events) {
				t.Errorf("rule hits %d of %d events: the case does not discriminate", len(want), len(events))
			}
			res, err := backtest.Run(ctx, s.Conn(), q, backtest.Config{Database: db, Since: since, Samples: 3})
			if err != nil {
				t.Fatal(err)
			}
			if res.Hits != uint64(len(want)) || len(res.Samples) != min(3, len(want)) {
				t.Errorf("Run() hits %d with %d samples, want %d hits", res.Hits, len(res.Samples), len(want))
			}
		})
	}
}

func describe(events []schemas.Event, want, got []string) string {
	in := func(ids []string, id string) bool {
		i := sort.SearchStrings(ids, id)
		return i < len(ids) && ids[i] == id
	}
	var b strings.Builder
	for i := range events {
		id := events[i].ID.String()
		if in(want, id) != in(got, id) {
			fmt.Fprintf(&b, "  %s streaming=%v backtest=%v raw=%q\n", id, in(want, id), in(got, id), events[i].Raw)
		}
	}
	return b.String()
}

// sampleEvents normalizes the repository's Zeek DNS and auth.log samples
// with the pipeline's parsers and adds edge cases the samples lack. Times
// are spread over the last ten days and two agencies.
func sampleEvents(t *testing.T, now time.Time) []schemas.Event {
	t.Helper()
	formats := normalize.Builtin()
	var out []schemas.Event
	add := func(format, path string) {
		f, _ := formats.Lookup(format)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := f.NewDecoder(normalize.BatchInfo{Received: now})
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 || f.Directive(line) {
				if f.Directive(line) {
					_ = dec.Directive(line)
				}
				continue
			}
			var ev schemas.Event
			if err := dec.Record(line, &ev); err != nil {
				continue // dead letter in the pipeline
			}
			ev.Format, ev.Raw = format, string(line)
			out = append(out, ev)
		}
	}
	add("zeek_dns", "../../deploy/samples/zeek_dns.json.log")
	add("syslog", "../../deploy/samples/auth.log")
	dns := func(q, src string, answers ...string) schemas.Event {
		ev := schemas.Event{ClassUID: schemas.ClassDNS, Format: "zeek_dns", Raw: "synthetic " + q}
		ev.DNS.QueryHostname, ev.Src.IP, ev.DNS.Answers, ev.DNS.RCodeID = q, src, answers, -1
		return ev
	}
	// A mapped field left empty reads the unmapped attribute of its Sigma
	// name (the engine's fallback).
	fallbackDNS := func(q string) schemas.Event {
		ev := dns("", "10.18.20.1")
		ev.Raw = "synthetic fallback " + q
		ev.AddUnmapped("query", q)
		ev.AddUnmapped("answer", "69.147.64.7")
		return ev
	}
	msg := func(m string) schemas.Event {
		return schemas.Event{ClassUID: schemas.ClassBase, Format: "syslog", Message: m, ProcessName: "app", Raw: "synthetic " + m}
	}
	out = append(out,
		dns("ÉCOLE.example", "10.18.20.99"),
		dns("shop.50%_off.example", "10.18.20.1"),
		dns("shop.50x_off.example", "10.18.20.1"),
		dns("a*star.example", "10.18.20.1"),
		dns("astar.example", "10.18.20.1"),
		dns(`back\slash.example`, "10.18.20.1"),
		dns("quo'te.example", "10.18.20.1"),
		dns("v6.example", "10.18.20.97", "fd3e:4f5a:5b81::2", "fd3e:4f5a:8000::1"),
		dns("v6b.example", "10.18.20.97", "fd3e:4f5a:7fff::1"),
		dns("junk-answer.example", "10.18.20.97", "not-an-ip", ""),
		dns("empty-answers.example", ""),
		fallbackDNS("fallback.msftncsi.com"),
		msg("powershell -enc AAAA"),
		msg("powershell /enc AAAA"),
		msg("powershell –enc AAAA"),
		msg("powershell xenc AAAA"),
		msg("alpha\nbeta gamma"),
		msg("alpha-beta"),
		msg("ALPHA BETA"),
	)
	for i := range out {
		out[i].ID = schemas.EventID("agree", i)
		out[i].Agency = []string{"agency-a", "agency-b"}[i%2]
		out[i].Sensor = "s1"
		out[i].Time = now.Add(-time.Duration(i) * 5 * time.Hour)
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
