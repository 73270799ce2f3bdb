package faults

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/internal/chtest"
)

// long reports whether the long form was asked for.
func long() bool { return os.Getenv("WATCHFLOOR_FAULTS_LONG") == "1" }

// Ports reserved for this suite.
const (
	natsPortBase = 14700 // + test number
	chTCPPort    = 19700
	chHTTPPort   = 19701
)

var buildOnce sync.Once
var buildDir string
var buildErr error

// binaries builds watchfloor and wfsensor once per test binary run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "wffaults-bin-")
		if buildErr != nil {
			return
		}
		for _, c := range []string{"watchfloor", "wfsensor"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, c), "../cmd/"+c)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", c, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// proc is one process of the system under test.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	peak atomic.Int64 // VmHWM in KiB, sampled
	// anyExit accepts any exit status after SIGTERM (nats-server exits 1).
	anyExit bool
}

func start(t *testing.T, name, logDir string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(logDir, name+".out")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	go p.sample()
	t.Cleanup(func() { p.kill() })
	return p
}

// sample keeps the peak resident set size of the process.
func (p *proc) sample() {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if kb := vmHWM(p.cmd.Process.Pid); kb > p.peak.Load() {
			p.peak.Store(kb)
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// kill9 is kill -9.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	t.Logf("%s killed with SIGKILL (peak RSS %d MiB)", p.name, p.peak.Load()/1024)
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// stop sends SIGTERM and waits; it fails the test on a non-zero exit.
func (p *proc) stop(t *testing.T, within time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(within):
		p.kill()
		t.Fatalf("%s did not stop within %s after SIGTERM; log:\n%s", p.name, within, tail(p.log))
	}
	if p.err != nil && !p.anyExit {
		t.Errorf("%s exited with %v; log:\n%s", p.name, p.err, tail(p.log))
	}
	t.Logf("%s stopped (peak RSS %d MiB)", p.name, p.peak.Load()/1024)
}

// wait waits for the process to exit by itself.
func (p *proc) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s still running after %s; log:\n%s", p.name, within, tail(p.log))
		return nil
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// system is one test's pipeline: ClickHouse database, data dirs, ports.
type system struct {
	t        *testing.T
	bin      string
	dir      string
	chAddr   string
	db       string
	conn     driver.Conn
	natsPort int
	natsURL  string // external server; "" means the embedded one
}

func newSystem(t *testing.T, n int) *system {
	t.Helper()
	addr, db := chtest.Database(t)
	return newSystemOn(t, n, addr, db, chtest.Conn(t, addr))
}

func newSystemOn(t *testing.T, n int, addr, db string, conn driver.Conn) *system {
	s := &system{t: t, bin: binaries(t), dir: t.TempDir(), chAddr: addr, db: db, conn: conn, natsPort: natsPortBase + n}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(s.dir, "*.out"))
			for _, l := range logs {
				t.Logf("--- %s\n%s", filepath.Base(l), tail(l))
			}
		}
	})
	return s
}

func (s *system) url() string {
	if s.natsURL != "" {
		return s.natsURL
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", s.natsPort)
}

// run starts `watchfloor run`.
func (s *system) run(name string) *proc {
	args := []string{"run",
		"--clickhouse.addr", s.chAddr, "--clickhouse.database", s.db,
		"--data-dir", filepath.Join(s.dir, "watchfloor-data"),
		"--metrics.listen", "",
		"--rules", "../detect/rules",
		"--pipeline.ack-wait", "10s",
		"--pipeline.flush-interval", "200ms",
		"--pipeline.flush-rows", "20000",
		"--pipeline.retry-max", "1s",
		"--log.level", logLevel(),
	}
	if s.natsURL != "" {
		args = append(args, "--nats.url", s.natsURL)
	} else {
		args = append(args, "--nats.listen", fmt.Sprintf("127.0.0.1:%d", s.natsPort))
	}
	p := start(s.t, name, s.dir, filepath.Join(s.bin, "watchfloor"), args...)
	s.waitPort(p)
	return p
}

// waitPort waits until the NATS port accepts connections (embedded server).
func (s *system) waitPort(p *proc) {
	s.t.Helper()
	if s.natsURL != "" {
		return
	}
	deadline := time.Now().Add(90 * time.Second)
	for !portOpen(s.natsPort) {
		select {
		case <-p.done:
			s.t.Fatalf("%s exited at start-up: %v\n%s", p.name, p.err, tail(p.log))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: NATS port %d not open after 90s\n%s", p.name, s.natsPort, tail(p.log))
		}
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// sensorArgs are the flags every sensor of the suite shares.
func (s *system) sensorArgs(cmd string) []string {
	return []string{cmd,
		"--nats", s.url(), "--agency", "agency-a", "--format", "zeek_dns", "--sensor-id", "fault-sensor",
		"--spool-dir", filepath.Join(s.dir, "spool"), "--timeout", "2s", "--log-level", logLevel(),
		"--batch-records", "500",
	}
}

// tailSensor starts `wfsensor tail` on path.
func (s *system) tailSensor(path string) *proc {
	args := append(s.sensorArgs("tail"), "--from-start", "--poll", "50ms", "--linger", "100ms", path)
	return start(s.t, "wfsensor-tail", s.dir, filepath.Join(s.bin, "wfsensor"), args...)
}

// counts are the rows the pipeline stored.
type counts struct {
	events, eventIDs, dead, deadIDs uint64
}

func (c counts) rows() uint64 { return c.events + c.dead }

func (s *system) counts() (counts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var c counts
	q := fmt.Sprintf(`SELECT
	    (SELECT count() FROM %[1]s.events), (SELECT uniqExact(event_id) FROM %[1]s.events),
	    (SELECT count() FROM %[1]s.dead_letters), (SELECT uniqExact(dead_letter_id) FROM %[1]s.dead_letters)`, s.db)
	err := s.conn.QueryRow(ctx, q).Scan(&c.events, &c.eventIDs, &c.dead, &c.deadIDs)
	return c, err
}

// waitRows waits until at least n rows are stored and returns how long it took.
func (s *system) waitRows(n uint64, within time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	var last counts
	var lastErr error
	for time.Since(start) < within {
		c, err := s.counts()
		if err == nil {
			last = c
			if c.rows() >= n {
				return time.Since(start)
			}
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	spooled, _ := filepath.Glob(filepath.Join(s.dir, "spool", "*", "*.wfb"))
	s.t.Fatalf("after %s: %d rows stored (%+v), want %d (last error %v); SOC_RAW holds %d batches, the spool %d",
		within, last.rows(), last, n, lastErr, s.rawMsgs(), len(spooled))
	return 0
}

// exact is the check every fault test ends with.
func (s *system) exact(sent, poison uint64) {
	s.t.Helper()
	c, err := s.counts()
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("records sent %d (poison %d); events count() %d uniqExact %d; dead_letters count() %d uniqExact %d",
		sent, poison, c.events, c.eventIDs, c.dead, c.deadIDs)
	if c.events+c.dead != sent {
		s.t.Errorf("count(): events %d + dead letters %d = %d, records sent %d", c.events, c.dead, c.events+c.dead, sent)
	}
	if c.eventIDs+c.deadIDs != sent {
		s.t.Errorf("uniqExact ids: events %d + dead letters %d = %d, records sent %d", c.eventIDs, c.deadIDs, c.eventIDs+c.deadIDs, sent)
	}
	if c.dead != poison || c.deadIDs != poison {
		s.t.Errorf("dead letters count() %d uniqExact %d, want the %d poison records", c.dead, c.deadIDs, poison)
	}
}

// tsBase is the time of the first record: recent, so the retention job of
// `watchfloor run` (365 days by event time) does not drop what we count.
var tsBase = time.Now().Add(-time.Hour).Unix()

// record returns clean zeek_dns record i.
func record(i int) string {
	return fmt.Sprintf(`{"ts":%d.%06d,"uid":"Cfault%d","id.orig_h":"10.%d.%d.%d","id.orig_p":%d,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","trans_id":%d,"query":"host%d.example.com","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["192.0.2.%d"],"TTLs":[60.0],"rejected":false}`,
		tsBase+int64(i/1000), (i%1000)*1000, i, i>>16&255, i>>8&255, i&255, 1024+i%60000, i%65536, i, i%250)
}

// poisonRecord is a line no parser accepts.
func poisonRecord(i int) string {
	return fmt.Sprintf(`{"ts": "poison %d", "query": [unterminated`, i)
}

// load appends records to path at rate per second for d, every every-th
// record a poison one (0: none). It returns the records and poison written.
type load struct {
	path       string
	rate       int
	poisonEach int
	sent       atomic.Int64
	poison     atomic.Int64
	next       int
}

// write appends n records now.
func (l *load) write(t *testing.T, n int) {
	t.Helper()
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		l.next++
		if l.poisonEach > 0 && l.next%l.poisonEach == 0 {
			w.WriteString(poisonRecord(l.next))
			l.poison.Add(1)
		} else {
			w.WriteString(record(l.next))
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Error(err)
	}
	f.Close()
	l.sent.Add(int64(n))
}

// run writes at the rate until ctx ends or total records are written.
func (l *load) run(ctx context.Context, t *testing.T, total int) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	per := max(l.rate/20, 1)
	for int(l.sent.Load()) < total {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.write(t, min(per, total-int(l.sent.Load())))
	}
}

func openCH(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func portOpen(port int) bool {
	c, err := netDialer.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

var netDialer = net.Dialer{Timeout: time.Second}

func chtestAddr(t *testing.T) string { return chtest.Addr(t) }

// rawMsgs is the number of messages in SOC_RAW, or -1 if unknown.
func (s *system) rawMsgs() int64 {
	nc, err := nats.Connect(s.url(), nats.Timeout(time.Second))
	if err != nil {
		return -1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := js.Stream(ctx, ingest.StreamRaw)
	if err != nil {
		return -1
	}
	info, err := st.Info(ctx)
	if err != nil {
		return -1
	}
	return int64(info.State.Msgs)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// logLevel of the processes: WATCHFLOOR_FAULTS_LOG=info for a diagnosis.
func logLevel() string {
	if l := os.Getenv("WATCHFLOOR_FAULTS_LOG"); l != "" {
		return l
	}
	return "warn"
}
