package rulebook_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

func TestStorePutHistoryDisableRollback(t *testing.T) {
	st, _ := newStore(t)
	ctx := ctxT(t)
	const id = "r-1"
	r1, err := st.Put(ctx, id, ruleYAML(id, "one", "alpha"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := st.Put(ctx, id, ruleYAML(id, "two", "beta"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, id, ruleYAML("other", "x", "y")); err == nil {
		t.Error("Put with a body whose id differs from the key: error = nil")
	}
	h, err := st.History(ctx, id)
	if err != nil || len(h) != 2 || h[0].Revision != r1 || h[1].Title != "two" {
		t.Fatalf("History() = %+v, %v", h, err)
	}
	old, err := st.GetRevision(ctx, id, r1)
	if err != nil || old.Title != "one" {
		t.Fatalf("GetRevision(%d) = %+v, %v", r1, old, err)
	}

	rb, err := st.Rollback(ctx, id, 0)
	if err != nil || rb.To != r1 || rb.From != r2 {
		t.Fatalf("Rollback(0) = %+v, %v; want to %d from %d", rb, err, r1, r2)
	}
	if cur, _ := st.Get(ctx, id); cur.Title != "one" || cur.Revision != rb.Revision {
		t.Errorf("after rollback Get() = %+v", cur)
	}
	rb, err = st.Rollback(ctx, id, r2)
	if err != nil || rb.To != r2 {
		t.Fatalf("Rollback(--to %d) = %+v, %v", r2, rb, err)
	}
	if _, err := st.Rollback(ctx, id, 999); err == nil {
		t.Error("Rollback to a missing revision: error = nil")
	}

	drev, err := st.Disable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := st.Get(ctx, id); cur.Op != rulebook.OpDisable || cur.Revision != drev {
		t.Errorf("after disable Get() = %+v, want disable at %d", cur, drev)
	}
	if _, err := st.Disable(ctx, id); err == nil {
		t.Error("second Disable: error = nil")
	}
	list, err := st.List(ctx)
	if err != nil || len(list) != 1 || list[0].Op != rulebook.OpDisable {
		t.Fatalf("List() = %+v, %v", list, err)
	}
	// A disabled rule rolls back to its last deployed version.
	rb, err = st.Rollback(ctx, id, 0)
	if err != nil || rb.To == 0 || rb.Disabled {
		t.Fatalf("Rollback of a disabled rule = %+v, %v", rb, err)
	}
	if cur, _ := st.Get(ctx, id); cur.Op != rulebook.OpPut || cur.Title != "two" {
		t.Errorf("after rollback of disable Get() = %+v", cur)
	}

	// A rule pushed once rolls back to nothing: it is disabled.
	if _, err := st.Put(ctx, "once", ruleYAML("once", "once", "z")); err != nil {
		t.Fatal(err)
	}
	rb, err = st.Rollback(ctx, "once", 0)
	if err != nil || !rb.Disabled {
		t.Fatalf("Rollback of a single-revision rule = %+v, %v; want disabled", rb, err)
	}
	if _, err := st.History(ctx, "missing"); !errors.Is(err, rulebook.ErrNotFound) {
		t.Errorf("History(missing) error = %v, want ErrNotFound", err)
	}
}

func TestWatcherSwapsAndRecordsRevision(t *testing.T) {
	st, _ := newStore(t)
	ctx := ctxT(t)
	base, err := rulebook.LoadBase("../rules")
	if err != nil {
		t.Fatal(err)
	}
	swapped := make(chan *rulebook.Set, 16)
	w, err := rulebook.NewWatcher(st, rulebook.WatcherConfig{Base: base, Compile: detect.DefaultConfig(),
		OnSwap: func(s *rulebook.Set) { swapped <- s }}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-swapped
	if got := w.Current().Len(); got != len(base) {
		t.Fatalf("initial set has %d rules, want %d", got, len(base))
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	ev := &schemas.Event{ClassUID: schemas.ClassDNS, Format: "zeek_dns", Agency: "a"}
	ev.DNS.QueryHostname = "x.livecheck.example"
	rev, err := st.Put(ctx, "live", ruleYAML("live", "live", "livecheck"))
	if err != nil {
		t.Fatal(err)
	}
	s := waitSet(t, swapped, func(s *rulebook.Set) bool { return s.Revision() >= rev })
	f := s.Eval(ev, nil)
	if len(f) != 1 || f[0].RuleID != "live" || f[0].RuleRevision != rev {
		t.Fatalf("Eval after push = %+v, want one finding of rule live at revision %d", f, rev)
	}
	// A broken revision is rejected and the good one stays live.
	if _, err := st.Put(ctx, "live", []byte("title: t\nid: live\nlevel: high\nlogsource: {category: dns}\ndetection:\n  sel:\n    query|nosuchmod: x\n  condition: sel\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Rejected() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w.Rejected() != 1 || w.Current().Revision() != rev {
		t.Errorf("after a bad revision: rejected %d, live revision %d; want 1, %d", w.Rejected(), w.Current().Revision(), rev)
	}
	// Disabling a base rule hides it.
	wpad := "b85c4eb2-f004-411d-a6d5-91aa86bf36af"
	if _, err := st.Put(ctx, wpad, mustRead(t, "../rules/dns/dns_query_wpad.yml")); err != nil {
		t.Fatal(err)
	}
	drev, err := st.Disable(ctx, wpad)
	if err != nil {
		t.Fatal(err)
	}
	s = waitSet(t, swapped, func(s *rulebook.Set) bool { return s.Revision() >= drev })
	ev.DNS.QueryHostname = "wpad"
	if f := s.Eval(ev, nil); len(f) != 0 {
		t.Errorf("disabled base rule still matches: %+v", f)
	}
	if s.Len() != len(base) { // base + live - wpad
		t.Errorf("set has %d rules, want %d", s.Len(), len(base))
	}
}

func waitSet(t *testing.T, ch <-chan *rulebook.Set, ok func(*rulebook.Set) bool) *rulebook.Set {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return s
			}
		case <-timeout:
			t.Fatal("no matching rule set within 5s")
		}
	}
}

func TestBundledRuleSidecarsPass(t *testing.T) {
	files, _ := filepath.Glob("../rules/*/*.yml")
	n := 0
	for _, f := range files {
		if detect.IsTestFile(f) {
			continue
		}
		rules, errs := detect.ParseFile(f, mustRead(t, f))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		tf, err := rulebook.LoadTestFile(rulebook.SidecarPath(f))
		if err != nil {
			t.Fatal(err)
		}
		if tf == nil {
			t.Errorf("%s has no test sidecar", f)
			continue
		}
		for _, r := range rulebook.RunTests(rules, tf, normalize.Builtin(), detect.DefaultConfig()) {
			n++
			if !r.Pass {
				t.Errorf("%s: case %q: got match %v, want %v %s", f, r.Case, r.Got, r.Want, r.Error)
			}
		}
	}
	if n < 6 {
		t.Errorf("ran %d cases, want at least 6", n)
	}
}

func TestRunTestsNamesFailingCase(t *testing.T) {
	rules, _ := detect.ParseFile("r.yml", ruleYAML("r", "r", "evil"))
	tf, err := rulebook.ParseTestFile("r.tests.yml", []byte(`cases:
  - name: should fire
    format: zeek_dns
    match: true
    raw: '{"ts":1.0,"query":"good.example"}'
  - name: bad format
    format: nope
    match: false
    raw: 'x'
`))
	if err != nil {
		t.Fatal(err)
	}
	res := rulebook.RunTests(rules, tf, normalize.Builtin(), detect.DefaultConfig())
	if len(res) != 2 || res[0].Pass || res[0].Case != "should fire" || res[1].Pass || res[1].Error == "" {
		t.Errorf("RunTests() = %+v", res)
	}
	if _, err := rulebook.ParseTestFile("x", []byte("cases:\n  - name: a\n    format: zeek_dns\n    raw: x\n")); err == nil {
		t.Error("ParseTestFile without match: error = nil")
	}
}
