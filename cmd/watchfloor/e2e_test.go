package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/internal/chtest"
)

// The end-to-end tests run the real binaries: wfsensor publishes to the
// embedded JetStream server of a `watchfloor run` process, which stores into
// the project's ClickHouse server. Nothing is faked.

// buildBinaries compiles watchfloor and wfsensor once per test binary run.
func buildBinaries(t *testing.T) (watchfloor, wfsensor string) {
	t.Helper()
	dir := t.TempDir()
	watchfloor = filepath.Join(dir, "watchfloor")
	wfsensor = filepath.Join(dir, "wfsensor")
	for out, pkg := range map[string]string{watchfloor: ".", wfsensor: "../wfsensor"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return watchfloor, wfsensor
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pipelineProc is one `watchfloor run` process.
type pipelineProc struct {
	cmd     *exec.Cmd
	log     *bytes.Buffer
	metrics string
}

func startPipeline(t *testing.T, bin string, args []string, metrics string) *pipelineProc {
	t.Helper()
	p := &pipelineProc{log: new(bytes.Buffer), metrics: metrics}
	p.cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start watchfloor run: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + metrics + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("watchfloor run not ready after 60s; log:\n%s", p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *pipelineProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *pipelineProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("watchfloor run exited with %v after SIGTERM; log:\n%s", err, p.log.String())
		}
	case <-time.After(60 * time.Second):
		p.kill()
		t.Errorf("watchfloor run did not stop within 60s of SIGTERM")
	}
}

// writeZeekDNS writes n Zeek DNS JSON records with recent timestamps (old
// ones would fall to the retention job) and the garbage lines given, spread
// through the file. It returns the path.
func writeZeekDNS(t *testing.T, n int, garbage []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dns.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := float64(time.Now().Add(-time.Hour).Unix())
	every := n / (len(garbage) + 1)
	g := 0
	for i := 0; i < n; i++ {
		if g < len(garbage) && i > 0 && i%every == 0 {
			w.WriteString(garbage[g])
			w.WriteByte('\n')
			g++
		}
		fmt.Fprintf(w, `{"ts":%.6f,"uid":"C%07d","id.orig_h":"10.1.%d.%d","id.orig_p":%d,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","trans_id":%d,"query":"host%d.example.org","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["192.0.2.%d"],"TTLs":[60.0],"rejected":false}`+"\n",
			base+float64(i)/1000, i, (i/250)%250, i%250, 1024+i%60000, i%65536, i%5000, i%250)
	}
	for ; g < len(garbage); g++ {
		w.WriteString(garbage[g])
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKillDuringReplayLosesNothing(t *testing.T) {
	addr, db := chtest.Database(t)
	conn := chtest.Conn(t, addr)
	watchfloor, wfsensor := buildBinaries(t)

	const records = 60000
	garbage := []string{
		`this is not json at all`,
		"{\"ts\":1.0,\"query\":\"bad\xff\xfeutf8\"}",
		`{"ts":` + strings.Repeat("9", 2<<20) + `}`, // 2 MiB: over the record limit
		`{"ts":"yesterday","query":"x.example"}`,
	}
	file := writeZeekDNS(t, records, garbage)

	natsAddr := freeAddr(t)
	metrics := freeAddr(t)
	dataDir := t.TempDir()
	args := []string{
		"--data-dir", dataDir,
		"--nats.listen", natsAddr,
		"--clickhouse.addr", addr,
		"--clickhouse.database", db,
		"--metrics.listen", metrics,
		"--rules", "../../detect/rules",
		"--pipeline.flush-rows", "5000",
		"--pipeline.flush-interval", "200ms",
		// A killed instance's unacked batches come back after the ack wait.
		"--pipeline.ack-wait", "10s",
	}
	p := startPipeline(t, watchfloor, args, metrics)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sensor := exec.CommandContext(ctx, wfsensor, "replay", "--nats", "nats://"+natsAddr,
		"--agency", "kill-test", "--sensor-id", "e2e", "--format", "zeek_dns",
		"--batch-records", "500", "--timeout", "5s", file)
	var sensorOut bytes.Buffer
	sensor.Stdout, sensor.Stderr = &sensorOut, &sensorOut
	if err := sensor.Start(); err != nil {
		t.Fatal(err)
	}
	sensorDone := make(chan error, 1)
	go func() { sensorDone <- sensor.Wait() }()

	count := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	// Kill the pipeline -9 once a quarter of the records are stored, while
	// the sensor is still publishing and batches are in flight.
	killed := false
	for !killed {
		n := count("SELECT count() FROM " + db + ".events")
		if n >= records/4 {
			p.kill()
			killed = true
			t.Logf("killed watchfloor run with %d rows stored", n)
			break
		}
		// The sensor usually finishes first: JetStream holds the backlog,
		// so the kill lands while the pipeline works through it.
		time.Sleep(20 * time.Millisecond)
		if ctx.Err() != nil {
			t.Fatalf("never reached %d rows; log:\n%s", records/4, p.log.String())
		}
	}

	p = startPipeline(t, watchfloor, args, metrics)
	defer p.stop(t)
	if err := <-sensorDone; err != nil {
		t.Fatalf("wfsensor replay: %v\n%s", err, sensorOut.String())
	}
	// The operator, unsure what landed, replays the same file again: the
	// batch ids are the same, so nothing may be stored twice.
	again, err := exec.CommandContext(ctx, wfsensor, "replay", "--nats", "nats://"+natsAddr,
		"--agency", "kill-test", "--sensor-id", "e2e", "--format", "zeek_dns",
		"--batch-records", "500", file).CombinedOutput()
	if err != nil {
		t.Fatalf("second wfsensor replay: %v\n%s", err, again)
	}
	t.Logf("second replay: %s", bytes.TrimSpace(again))

	wantDead := uint64(len(garbage))
	for {
		ev := count("SELECT count() FROM " + db + ".events FINAL")
		dl := count("SELECT count() FROM " + db + ".dead_letters FINAL")
		if ev+dl >= records+wantDead {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after restart: %d events + %d dead letters, want %d + %d; log:\n%s", ev, dl, records, wantDead, p.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Let anything still in flight land before the exact check.
	time.Sleep(time.Second)

	if got := count("SELECT count() FROM " + db + ".events FINAL"); got != records {
		t.Errorf("events seen by an analyst (FINAL) = %d, want %d", got, records)
	}
	if got := count("SELECT uniqExact(event_id) FROM " + db + ".events"); got != records {
		t.Errorf("distinct event ids = %d, want %d", got, records)
	}
	if got := count("SELECT count() FROM " + db + ".dead_letters FINAL"); got != wantDead {
		t.Errorf("dead letters = %d, want %d", got, wantDead)
	}
	// Every dead letter says why and keeps (a prefix of) its bytes.
	rows, err := conn.Query(ctx, "SELECT reason, length(raw) FROM "+db+".dead_letters FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var reason string
		var rawLen uint64
		if err := rows.Scan(&reason, &rawLen); err != nil {
			t.Fatal(err)
		}
		if reason == "" || rawLen == 0 {
			t.Errorf("dead letter without reason or raw bytes: reason=%q raw=%d bytes", reason, rawLen)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"log level", []string{"--log.level", "loud"}, "log.level must be one of debug, info, warn, error"},
		{"log format", []string{"--log.format", "xml"}, "log.format must be text or json"},
		{"workers", []string{"--pipeline.workers", "0"}, "pipeline.workers"},
		{"nats listen", []string{"--nats.listen", "nocolon"}, "nats.listen"},
		{"rules", []string{"--rules", "/does/not/exist"}, `rules "/does/not/exist" must be a directory`},
		{"unknown flag", []string{"--no-such-flag"}, "no-such-flag"},
		{"dup window", []string{"--nats.duplicate-window", "1m", "--pipeline.ack-wait", "2m"}, "nats.duplicate-window (1m0s) must be longer than pipeline.ack-wait"},
		{"detections dup window", []string{"--nats.detections-duplicate-window", "2m", "--pipeline.ack-wait", "2m"}, "nats.detections-duplicate-window (2m0s) must be longer than pipeline.ack-wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), append([]string{"run"}, tt.args...), func(string) string { return "" }, &out, &errb)
			if err == nil {
				t.Fatalf("run %v succeeded, want an error naming %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEnvironmentErrorRedactsPasswords(t *testing.T) {
	env := map[string]string{"WATCHFLOOR_PIPELINE_WORKERS": "many", "WATCHFLOOR_CLICKHOUSE_PASSWORD": "hunter2"}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run"}, func(k string) string { return env[k] }, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "WATCHFLOOR_PIPELINE_WORKERS") {
		t.Fatalf("err = %v, want it to name WATCHFLOOR_PIPELINE_WORKERS", err)
	}
	if strings.Contains(err.Error()+out.String()+errb.String(), "hunter2") {
		t.Errorf("the password reached the output: %v", err)
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	for _, cmd := range []string{"run", "migrate"} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{cmd, "--help"}, func(string) string { return "" }, &out, &errb); err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		var cfg config
		fs := flagSet(cmd, &cfg, cmd == "run")
		n := 0
		fs.VisitAll(func(f *flag.Flag) {
			n++
			if !strings.Contains(out.String(), "--"+f.Name+"  ["+envName(f.Name)+"]") {
				t.Errorf("%s --help does not list --%s with its variable", cmd, f.Name)
			}
			if len(f.Usage) < 10 {
				t.Errorf("%s --%s has no real explanation: %q", cmd, f.Name, f.Usage)
			}
		})
		if n < 5 {
			t.Errorf("%s has only %d flags; flagSet is not what --help prints", cmd, n)
		}
	}
}
