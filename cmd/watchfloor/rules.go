package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/backtest"
	"github.com/watchfloor/watchfloor/detect/rulebook"
)

const rulesUsage = `Usage: watchfloor rules <command> [flags] [args]

Rule lifecycle for detection engineers. Deployed rules live in the
JetStream KV bucket soc_rules (one key per rule id; its history is the
version record); every 'watchfloor run' swaps in a change within seconds.

Commands:
  check DIR [--placeholders FILE] [--quiet]
                            compile every rule under DIR (SigmaHQ-sized sets),
                            per-folder counts and one line per failing rule
  validate PATH...          parse and compile rules (files or directories)
  test PATH...              run each rule's sidecar cases (<rule>.tests.yml)
  push PATH... [--dry-run]  validate and test, then deploy what changed;
                            refuses on any failure; --dry-run shows the diff;
                            --require-tests also refuses rules without cases
  list                      deployed rules with revision and state
  show ID [--revision N]    one rule as deployed (or at revision N)
  diff PATH...              local rules against what is deployed
  diff ID [--revision N]    revision N (default: the previous one) against the current
  history ID                every kept revision of a rule
  disable ID                stop a rule everywhere (history kept)
  rollback ID [--to N]      make revision N (default: the previous version) live again
  backtest FILE --since 30d [--until T] [--agency X] [--samples N]
                            run a rule over the events stored in ClickHouse:
                            hits per agency and day, and sample hits

Every command takes --json for machine-readable output. Exit status is 1
when a rule is invalid, a case fails or a push is refused.
`

// rulesFlags are the flags of every rules command.
type rulesFlags struct {
	NATSURL, NATSCreds, NATSUser, NATSPassword string
	JSON, DryRun, RequireTests                 bool
	Revision, To                               uint64
	Timeout                                    time.Duration
	CHAddr, CHDatabase, CHUser, CHPassword     string
	Since, Until, Agency                       string
	Samples                                    int
}

func rulesFlagSet(rf *rulesFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("rules", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&rf.NATSURL, "nats.url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	fs.StringVar(&rf.NATSCreds, "nats.creds", "", "NATS credentials file (JWT + NKey) of a detection engineer")
	fs.StringVar(&rf.NATSUser, "nats.user", "", "NATS user")
	fs.StringVar(&rf.NATSPassword, "nats.password", "", "NATS password (prefer WATCHFLOOR_NATS_PASSWORD; never logged)")
	fs.BoolVar(&rf.JSON, "json", false, "print JSON instead of text")
	fs.BoolVar(&rf.DryRun, "dry-run", false, "push: show what would change, change nothing")
	fs.BoolVar(&rf.RequireTests, "require-tests", false, "test/push: a rule without sidecar cases is a failure")
	fs.Uint64Var(&rf.Revision, "revision", 0, "show/diff: the KV revision to read")
	fs.Uint64Var(&rf.To, "to", 0, "rollback: the KV revision to make live again")
	fs.DurationVar(&rf.Timeout, "timeout", 30*time.Second, "how long a command may take")
	fs.StringVar(&rf.CHAddr, "clickhouse.addr", "127.0.0.1:9000", "backtest: ClickHouse native host:port")
	fs.StringVar(&rf.CHDatabase, "clickhouse.database", "watchfloor", "backtest: database holding the events table")
	fs.StringVar(&rf.CHUser, "clickhouse.user", "default", "backtest: ClickHouse user")
	fs.StringVar(&rf.CHPassword, "clickhouse.password", "", "backtest: ClickHouse password (prefer WATCHFLOOR_CLICKHOUSE_PASSWORD)")
	fs.StringVar(&rf.Since, "since", "30d", "backtest: start of the window, as an age (30d, 12h) or RFC 3339 time")
	fs.StringVar(&rf.Until, "until", "", "backtest: end of the window (age or RFC 3339); empty is now")
	fs.StringVar(&rf.Agency, "agency", "", "backtest: only this agency's events")
	fs.IntVar(&rf.Samples, "samples", 5, "backtest: sample hits to show")
	return fs
}

// parseInterleaved applies the environment, then parses flags that may
// come before, between or after the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment %s=%q: %w", envName(f.Name), redact(f.Name, v), err)
			}
		}
	})
	if envErr != nil {
		return nil, usageError{envErr}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{fmt.Errorf("%w (see watchfloor rules --help)", err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func cmdRules(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, rulesUsage)
		if len(args) == 0 {
			return usageError{errors.New("a rules command is required")}
		}
		return nil
	}
	sub := args[0]
	if sub == "check" {
		return cmdRulesCheck(ctx, args[1:], stdout, stderr)
	}
	var rf rulesFlags
	fs := rulesFlagSet(&rf)
	pos, err := parseInterleaved(fs, args[1:], getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, fs, rulesUsage)
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, rf.Timeout)
	defer cancel()
	o := &out{w: stdout, json: rf.JSON}
	cfg := detect.DefaultConfig()
	need := func(n int, what string) error {
		if len(pos) < n {
			return usageError{fmt.Errorf("rules %s needs %s", sub, what)}
		}
		if n == 1 && len(pos) > 1 && what != "PATH..." {
			return usageError{fmt.Errorf("rules %s: unexpected argument %q", sub, pos[1])}
		}
		return nil
	}
	switch sub {
	case "validate":
		if err := need(1, "PATH..."); err != nil {
			return err
		}
		return rulesValidate(pos, cfg, o)
	case "test":
		if err := need(1, "PATH..."); err != nil {
			return err
		}
		return rulesTest(pos, rf.RequireTests, cfg, o)
	case "backtest":
		if err := need(1, "a rule FILE"); err != nil {
			return err
		}
		return rulesBacktest(ctx, pos[0], &rf, cfg, o)
	case "push", "list", "show", "diff", "history", "disable", "rollback":
	default:
		fmt.Fprint(stderr, rulesUsage)
		return usageError{fmt.Errorf("unknown rules command %q", sub)}
	}
	switch sub {
	case "push":
		if err := need(1, "PATH..."); err != nil {
			return err
		}
	case "show", "history", "disable", "rollback":
		if err := need(1, "a rule ID"); err != nil {
			return err
		}
	case "diff":
		if err := need(1, "PATH... or a rule ID"); err != nil {
			return err
		}
	}
	store, nc, err := openRulesStore(ctx, &rf, sub != "list" && sub != "show" && sub != "history" && sub != "diff")
	if err != nil {
		return err
	}
	defer nc.Close()
	switch sub {
	case "push":
		return rulesPush(ctx, store, pos, rf.DryRun, rf.RequireTests, cfg, o)
	case "list":
		return rulesList(ctx, store, o)
	case "show":
		return rulesShow(ctx, store, pos[0], rf.Revision, o)
	case "history":
		return rulesHistory(ctx, store, pos[0], o)
	case "diff":
		if _, err := os.Stat(pos[0]); err == nil {
			return rulesPush(ctx, store, pos, true, false, cfg, o)
		}
		return rulesDiffRevision(ctx, store, pos[0], rf.Revision, o)
	case "disable":
		rev, err := store.Disable(ctx, pos[0])
		if err != nil {
			return err
		}
		return o.emit(map[string]any{"id": pos[0], "disabled": true, "revision": rev},
			fmt.Sprintf("disabled %s at revision %d (roll back with: watchfloor rules rollback %s)\n", pos[0], rev, pos[0]))
	case "rollback":
		res, err := store.Rollback(ctx, pos[0], rf.To)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("rolled back %s: revision %d's rule is live again as revision %d (was %d)\n", res.ID, res.To, res.Revision, res.From)
		if res.Disabled {
			text = fmt.Sprintf("rolled back %s: no earlier version, the rule is disabled at revision %d (was %d)\n", res.ID, res.Revision, res.From)
		}
		return o.emit(res, text)
	}
	return nil
}

// openRulesStore connects as the configured user. write creates the
// bucket when it is missing (an engineer's right).
func openRulesStore(ctx context.Context, rf *rulesFlags, write bool) (*rulebook.Store, *nats.Conn, error) {
	opts := []nats.Option{nats.Name("watchfloor-rules"), nats.Timeout(5 * time.Second)}
	switch {
	case rf.NATSCreds != "" && rf.NATSUser != "":
		return nil, nil, usageError{errors.New("nats.creds and nats.user are exclusive: give one")}
	case rf.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(rf.NATSCreds))
	case rf.NATSUser != "":
		opts = append(opts, nats.UserInfo(rf.NATSUser, rf.NATSPassword))
	}
	nc, err := nats.Connect(rf.NATSURL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect nats %s: %w", redactURL(rf.NATSURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	var st *rulebook.Store
	if write {
		st, err = rulebook.Open(ctx, js, rulebook.DefaultBucketConfig())
	} else {
		st, err = rulebook.OpenStore(ctx, js)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return st, nc, nil
}

// out prints either JSON or text.
type out struct {
	w    io.Writer
	json bool
}

func (o *out) emit(v any, text string) error {
	if o.json {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.w, "%s\n", b)
		return err
	}
	_, err := io.WriteString(o.w, text)
	return err
}

// failed is returned after the report was printed: main exits 1 with it.
func failed(format string, args ...any) error { return fmt.Errorf(format, args...) }

func rulesValidate(paths []string, cfg detect.Config, o *out) error {
	_, checks, err := loadLocal(paths, cfg)
	if err != nil {
		return err
	}
	bad := 0
	var b strings.Builder
	for _, c := range checks {
		if c.OK {
			fmt.Fprintf(&b, "ok    %s  %s  (%s)\n", c.ID, c.Title, c.File)
			continue
		}
		bad++
		fmt.Fprintf(&b, "FAIL  %s  %s: %s\n", orDash(c.ID), c.File, c.Error)
	}
	fmt.Fprintf(&b, "%d rule(s) checked, %d problem(s)\n", len(checks)-bad, bad)
	if err := o.emit(map[string]any{"checks": nonNil(checks), "problems": bad, "ok": bad == 0}, b.String()); err != nil {
		return err
	}
	if bad > 0 {
		return failed("rules validate: %d problem(s)", bad)
	}
	return nil
}

func rulesTest(paths []string, requireTests bool, cfg detect.Config, o *out) error {
	rules, checks, err := loadLocal(paths, cfg)
	if err != nil {
		return err
	}
	rep, err := runSidecars(rules, cfg)
	if err != nil {
		return err
	}
	bad := countBad(checks)
	untested := 0
	if requireTests {
		untested = len(rep.Untested)
	}
	text := renderChecks(checks) + renderCases(rep)
	if err := o.emit(map[string]any{"checks": nonNil(checks), "tests": rep, "ok": bad == 0 && rep.Failed == 0 && untested == 0}, text); err != nil {
		return err
	}
	if bad > 0 || rep.Failed > 0 || untested > 0 {
		return failed("rules test: %d invalid rule(s), %d failing case(s), %d untested rule(s) with --require-tests", bad, rep.Failed, untested)
	}
	return nil
}

func countBad(checks []ruleCheck) int {
	n := 0
	for _, c := range checks {
		if !c.OK {
			n++
		}
	}
	return n
}

func renderChecks(checks []ruleCheck) string {
	var b strings.Builder
	for _, c := range checks {
		if !c.OK {
			fmt.Fprintf(&b, "INVALID  %s  %s: %s\n", orDash(c.ID), c.File, c.Error)
		}
	}
	return b.String()
}

func renderCases(rep testReport) string {
	var b strings.Builder
	for _, c := range rep.Cases {
		status := "PASS"
		if !c.Pass {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "%s  %s  %q  want %s, got %s", status, c.RuleID, c.Case, matchWord(c.Want), matchWord(c.Got))
		if c.Error != "" {
			fmt.Fprintf(&b, "  error: %s", c.Error)
		}
		b.WriteByte('\n')
	}
	for _, id := range rep.Untested {
		fmt.Fprintf(&b, "NOTEST  %s  (no sidecar case)\n", id)
	}
	fmt.Fprintf(&b, "%d case(s), %d failed, %d rule(s) without tests\n", len(rep.Cases), rep.Failed, len(rep.Untested))
	return b.String()
}

func matchWord(m bool) string {
	if m {
		return "match"
	}
	return "no match"
}

// pushChange is what push does (or would do) to one rule.
type pushChange struct {
	ID       string `json:"id"`
	File     string `json:"file"`
	Change   string `json:"change"` // new, changed, enable, unchanged
	From     uint64 `json:"from_revision,omitempty"`
	Revision uint64 `json:"revision,omitempty"` // written (0 on a dry run)
	Diff     string `json:"diff,omitempty"`
}

func rulesPush(ctx context.Context, store *rulebook.Store, paths []string, dryRun, requireTests bool, cfg detect.Config, o *out) error {
	rules, checks, err := loadLocal(paths, cfg)
	if err != nil {
		return err
	}
	rep, err := runSidecars(rules, cfg)
	if err != nil {
		return err
	}
	untested := 0
	if requireTests {
		untested = len(rep.Untested)
	}
	if bad := countBad(checks); bad > 0 || rep.Failed > 0 || untested > 0 {
		var names []string
		for _, c := range checks {
			if !c.OK {
				names = append(names, fmt.Sprintf("%s (%s): %s", orDash(c.ID), c.File, c.Error))
			}
		}
		for _, c := range rep.Cases {
			if !c.Pass {
				names = append(names, fmt.Sprintf("rule %s case %q: want %s, got %s%s", c.RuleID, c.Case, matchWord(c.Want), matchWord(c.Got), errSuffix(c.Error)))
			}
		}
		if untested > 0 {
			names = append(names, "rules without tests (--require-tests): "+strings.Join(rep.Untested, ", "))
		}
		_ = o.emit(map[string]any{"refused": true, "checks": nonNil(checks), "tests": rep},
			renderChecks(checks)+renderCases(rep))
		return failed("push refused, nothing deployed:\n  %s", strings.Join(names, "\n  "))
	}
	var changes []pushChange
	for _, r := range rules {
		c := pushChange{ID: r.Rule.ID, File: r.File}
		cur, err := store.Get(ctx, r.Rule.ID)
		switch {
		case errors.Is(err, rulebook.ErrNotFound):
			c.Change, c.Diff = "new", lineDiff("/dev/null", r.File, nil, r.Body)
		case err != nil:
			return err
		case cur.Op != rulebook.OpPut:
			c.Change, c.From = "enable", cur.Revision
			c.Diff = lineDiff(fmt.Sprintf("%s (disabled at %d)", r.Rule.ID, cur.Revision), r.File, nil, r.Body)
		default:
			c.From = cur.Revision
			c.Diff = lineDiff(fmt.Sprintf("%s@%d", r.Rule.ID, cur.Revision), r.File, cur.Body, r.Body)
			c.Change = "changed"
			if c.Diff == "" {
				c.Change = "unchanged"
			}
		}
		changes = append(changes, c)
	}
	if !dryRun {
		for i := range changes {
			if changes[i].Change == "unchanged" {
				continue
			}
			rev, err := store.Put(ctx, changes[i].ID, rules[i].Body)
			if err != nil {
				return fmt.Errorf("push stopped after %d rule(s): %w", i, err)
			}
			changes[i].Revision = rev
		}
	}
	var b strings.Builder
	n := 0
	for _, c := range changes {
		if c.Change == "unchanged" {
			continue
		}
		n++
		if dryRun {
			fmt.Fprintf(&b, "would deploy %s (%s)\n%s", c.ID, c.Change, c.Diff)
		} else {
			fmt.Fprintf(&b, "deployed %s (%s) as revision %d\n", c.ID, c.Change, c.Revision)
		}
	}
	verb := "deployed"
	if dryRun {
		verb = "would deploy"
	}
	fmt.Fprintf(&b, "%s %d rule(s), %d unchanged; %d case(s) passed, %d rule(s) without tests\n", verb, n, len(changes)-n, len(rep.Cases), len(rep.Untested))
	return o.emit(map[string]any{"dry_run": dryRun, "changes": nonNil(changes), "tests": rep}, b.String())
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

func rulesList(ctx context.Context, store *rulebook.Store, o *out) error {
	list, err := store.List(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREV\tSTATE\tLEVEL\tUPDATED\tTITLE")
	for _, e := range list {
		state := "live"
		if e.Op != rulebook.OpPut {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Revision, state, orDash(e.Level), e.Created.Format(time.RFC3339), truncate(e.Title, 60))
	}
	tw.Flush()
	fmt.Fprintf(&b, "%d rule(s)\n", len(list))
	return o.emit(map[string]any{"rules": nonNil(list)}, b.String())
}

func rulesShow(ctx context.Context, store *rulebook.Store, id string, rev uint64, o *out) error {
	var e rulebook.Entry
	var err error
	if rev != 0 {
		e, err = store.GetRevision(ctx, id, rev)
	} else {
		e, err = store.Get(ctx, id)
	}
	if err != nil {
		return err
	}
	text := fmt.Sprintf("# %s revision %d, %s at %s\n%s", e.ID, e.Revision, e.Op, e.Created.Format(time.RFC3339), e.Body)
	if len(e.Body) > 0 && e.Body[len(e.Body)-1] != '\n' {
		text += "\n"
	}
	return o.emit(struct {
		rulebook.Entry
		Body string `json:"body"`
	}{e, string(e.Body)}, text)
}

func rulesHistory(ctx context.Context, store *rulebook.Store, id string, o *out) error {
	h, err := store.History(ctx, id)
	if err != nil {
		return err
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REV\tOP\tCREATED\tTITLE")
	for _, e := range h {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Revision, e.Op, e.Created.Format(time.RFC3339), truncate(e.Title, 60))
	}
	tw.Flush()
	return o.emit(map[string]any{"id": id, "history": h}, b.String())
}

func rulesDiffRevision(ctx context.Context, store *rulebook.Store, id string, rev uint64, o *out) error {
	h, err := store.History(ctx, id)
	if err != nil {
		return err
	}
	cur := h[len(h)-1]
	var from *rulebook.Entry
	for i := len(h) - 1; i >= 0; i-- {
		if (rev == 0 && h[i].Revision < cur.Revision && h[i].Op == rulebook.OpPut) || (rev != 0 && h[i].Revision == rev) {
			from = &h[i]
			break
		}
	}
	if from == nil {
		if rev != 0 {
			return fmt.Errorf("rule %s: no kept revision %d", id, rev)
		}
		return fmt.Errorf("rule %s: no earlier version than revision %d", id, cur.Revision)
	}
	d := lineDiff(fmt.Sprintf("%s@%d", id, from.Revision), fmt.Sprintf("%s@%d (%s)", id, cur.Revision, cur.Op), from.Body, cur.Body)
	if d == "" {
		d = "(no difference)\n"
	}
	return o.emit(map[string]any{"id": id, "from": from.Revision, "to": cur.Revision, "diff": d}, d)
}

func rulesBacktest(ctx context.Context, file string, rf *rulesFlags, cfg detect.Config, o *out) error {
	now := time.Now().UTC()
	since, err := parseWhen(rf.Since, now)
	if err != nil {
		return usageError{fmt.Errorf("since: %w", err)}
	}
	var until time.Time
	if rf.Until != "" {
		if until, err = parseWhen(rf.Until, now); err != nil {
			return usageError{fmt.Errorf("until: %w", err)}
		}
	}
	bc := backtest.Config{Database: rf.CHDatabase, Since: since, Until: until, Agency: rf.Agency, Samples: rf.Samples}
	if err := bc.Validate(); err != nil {
		return usageError{err}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	rules, errs := detect.ParseFile(file, data)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var queries []*backtest.Query
	for _, r := range rules {
		q, err := backtest.Compile(r, cfg.Mapping)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		queries = append(queries, q)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: splitList(rf.CHAddr), DialTimeout: 5 * time.Second,
		Auth: clickhouse.Auth{Database: rf.CHDatabase, Username: rf.CHUser, Password: rf.CHPassword}})
	if err != nil {
		return fmt.Errorf("open clickhouse %s: %w", rf.CHAddr, err)
	}
	defer conn.Close()
	var results []*backtest.Result
	var b strings.Builder
	for _, q := range queries {
		res, err := backtest.Run(ctx, conn, q, bc)
		if err != nil {
			return err
		}
		results = append(results, res)
		fmt.Fprintf(&b, "rule %s  %q\nwindow %s .. %s", res.RuleID, res.Title, res.Since.Format(time.RFC3339), res.Until.Format(time.RFC3339))
		if res.Agency != "" {
			fmt.Fprintf(&b, "  agency %s", res.Agency)
		}
		fmt.Fprintf(&b, "\nhits %d  (%s)\n", res.Hits, res.Elapsed.Round(time.Millisecond))
		if res.Unrouted {
			b.WriteString("note: the mapping routes this rule's logsource to no events, so it can never match\n")
		}
		if len(res.Days) > 0 {
			tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENCY\tDAY\tHITS")
			for _, d := range res.Days {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", d.Agency, d.Day, d.Hits)
			}
			tw.Flush()
		}
		for _, s := range res.Samples {
			fmt.Fprintf(&b, "sample %s %s %s %s\n", s.Time.Format(time.RFC3339), s.Agency, s.EventID, truncate(strings.ReplaceAll(s.Raw, "\n", " "), 120))
		}
	}
	return o.emit(map[string]any{"results": results}, b.String())
}

// parseWhen reads an age before now (30d, 12h, 90m) or an RFC 3339 time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 || n > 3660 {
			return time.Time{}, fmt.Errorf("%q: want a number of days between 1 and 3660, like 30d", s)
		}
		return now.AddDate(0, 0, -n), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q: want an age like 30d or 12h, or an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
