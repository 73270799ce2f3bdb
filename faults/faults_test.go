package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scale is the load of one test: records per second and seconds of load.
func scale() (rate, seconds int, chOutage time.Duration) {
	if long() {
		// WATCHFLOOR_FAULTS_RATE and WATCHFLOOR_FAULTS_SECONDS stretch it,
		// e.g. 2000 and 600 for a 10-minute steady run.
		return envInt("WATCHFLOOR_FAULTS_RATE", 5000), envInt("WATCHFLOOR_FAULTS_SECONDS", 120), 30 * time.Second
	}
	return 4000, 8, 10 * time.Second
}

// steady runs a tail sensor over a file fed at a steady rate, calls fault
// once a third of the load is written, and ends with the exact count.
func steady(t *testing.T, s *system, poisonEach, total int, fault func(t *testing.T) (recovered func())) {
	rate, seconds, _ := scale()
	if total == 0 {
		total = rate * seconds
	}
	l := &load{path: filepath.Join(s.dir, "dns.log"), rate: rate, poisonEach: poisonEach}
	l.write(t, 1) // the file exists before the sensor starts
	sensor := s.tailSensor(l.path)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		l.run(ctx, t, total)
	}()
	for int(l.sent.Load()) < total/3 {
		time.Sleep(50 * time.Millisecond)
	}
	faultAt := time.Now()
	recovered := fault(t)
	t.Logf("fault injected and undone in %s, at %d records written", time.Since(faultAt).Round(time.Millisecond), l.sent.Load())
	<-loaded
	sent := uint64(l.sent.Load())
	took := s.waitRows(sent, time.Duration(envInt("WATCHFLOOR_FAULTS_WAIT_S", 180))*time.Second)
	t.Logf("all %d records stored %s after the load ended", sent, took.Round(time.Millisecond))
	if recovered != nil {
		recovered()
	}
	sensor.stop(t, 60*time.Second)
	time.Sleep(time.Second) // let any late redelivery land before counting
	s.exact(sent, uint64(l.poison.Load()))
}

// recoveryTimer measures the time from a fault's end until the stored row
// count grows again.
func recoveryTimer(t *testing.T, s *system) func() {
	c0, _ := s.counts()
	since := time.Now()
	return func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if c, err := s.counts(); err == nil && c.rows() > c0.rows() {
				t.Logf("recovery: rows grow again %s after the fault ended", time.Since(since).Round(10*time.Millisecond))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("no progress within 2m of the fault's end")
	}
}

// a) kill -9 of `watchfloor run` (its embedded NATS dies with it) under load.
func TestKillPipeline(t *testing.T) {
	s := newSystem(t, 1)
	run := s.run("watchfloor-run-1")
	var run2 *proc
	steady(t, s, 0, 0, func(t *testing.T) func() {
		run.kill9(t)
		time.Sleep(time.Second)
		run2 = s.run("watchfloor-run-2")
		recoveryTimer(t, s)()
		return nil
	})
	run2.stop(t, 90*time.Second)
}

// b) ClickHouse stopped under load, then started again.
func TestClickHouseOutage(t *testing.T) {
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if _, err := exec.LookPath("clickhouse"); err != nil {
			t.Skip("no clickhouse-server on PATH: run deploy/local/deps.sh")
		}
	}
	chtestAddr(t) // honour WATCHFLOOR_REQUIRE_CLICKHOUSE / skip like the others
	chDir := filepath.Join(t.TempDir(), "ch")
	if portOpen(chTCPPort) {
		t.Fatalf("port %d is in use: this test starts its own ClickHouse there", chTCPPort)
	}
	// The project script writes the config and starts the server; the test
	// then owns the server process so it can stop and start it by pid.
	script, _ := filepath.Abs("../deploy/local/clickhouse.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	out, err := exec.CommandContext(ctx, script, "start", chDir, fmt.Sprint(chTCPPort), fmt.Sprint(chHTTPPort)).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("clickhouse.sh start: %v\n%s", err, out)
	}
	config := filepath.Join(chDir, "config.xml")
	if pid := pidWithArg(t, "--config-file="+config); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		// Wait for the process itself, not just the port: it holds the
		// data directory until it exits.
		for i := 0; i < 600 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		waitPortClosed(t, chTCPPort)
	}
	chBin, err := exec.LookPath("clickhouse-server")
	if err != nil {
		t.Skip("the outage test needs the clickhouse-server binary")
	}
	startCH := func(name string) *proc {
		p := start(t, name, chDir, chBin, "--config-file="+config)
		deadline := time.Now().Add(60 * time.Second)
		for !portOpen(chTCPPort) {
			if time.Now().After(deadline) {
				t.Fatalf("ClickHouse not up after 60s:\n%s", tail(p.log))
			}
			time.Sleep(100 * time.Millisecond)
		}
		return p
	}
	chp := startCH("clickhouse-1")
	addr := fmt.Sprintf("127.0.0.1:%d", chTCPPort)
	conn := openCH(t, addr)
	if err := conn.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS watchfloor_faults"); err != nil {
		t.Fatal(err)
	}
	s := newSystemOn(t, 2, addr, "watchfloor_faults", conn)
	run := s.run("watchfloor-run")
	_, _, outage := scale()
	steady(t, s, 0, 0, func(t *testing.T) func() {
		chp.anyExit = true
		chp.stop(t, 60*time.Second)
		t.Logf("ClickHouse stopped for %s", outage)
		time.Sleep(outage)
		chp = startCH("clickhouse-2")
		recoveryTimer(t, s)()
		return nil
	})
	run.stop(t, 90*time.Second)
	chp.anyExit = true
	chp.stop(t, 60*time.Second)
}

// c) an external nats-server restarted under load: the sensor spools, the
// pipeline reconnects.
func TestNATSRestart(t *testing.T) {
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("no nats-server on PATH: run deploy/local/deps.sh (apt-get install nats-server)")
	}
	s := newSystem(t, 3)
	s.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", s.natsPort)
	store := filepath.Join(s.dir, "nats-store")
	natsArgs := []string{"-js", "-a", "127.0.0.1", "-p", fmt.Sprint(s.natsPort), "-sd", store}
	nats := start(t, "nats-server-1", s.dir, natsBin, natsArgs...)
	nats.anyExit = true
	for !portOpen(s.natsPort) {
		time.Sleep(50 * time.Millisecond)
	}
	run := s.run("watchfloor-run")
	steady(t, s, 0, 0, func(t *testing.T) func() {
		nats.stop(t, 30*time.Second)
		time.Sleep(3 * time.Second)
		nats = start(t, "nats-server-2", s.dir, natsBin, natsArgs...)
		nats.anyExit = true
		recoveryTimer(t, s)()
		return nil
	})
	run.stop(t, 90*time.Second)
	nats.stop(t, 30*time.Second)
}

// d) a sensor killed with SIGKILL mid-replay, then the same replay run again.
func TestKillSensorMidReplay(t *testing.T) {
	s := newSystem(t, 4)
	n := 100000
	if long() {
		n = 1000000
	}
	l := &load{path: filepath.Join(s.dir, "replay.log")}
	l.write(t, n)
	run := s.run("watchfloor-run")
	// Small batches, few in flight: the replay takes long enough to be cut.
	args := append(s.sensorArgs("replay"), "--batch-records", "100", "--max-in-flight", "2", l.path)
	first := start(t, "wfsensor-replay-1", s.dir, filepath.Join(s.bin, "wfsensor"), args...)
	deadline := time.Now().Add(time.Minute)
	for s.rawMsgs() < 100 && time.Now().Before(deadline) { // 10% of the batches published
		time.Sleep(2 * time.Millisecond)
	}
	first.kill9(t)
	c, _ := s.counts()
	t.Logf("sensor killed with %d of %d batches in the stream, %d of %d rows stored", s.rawMsgs(), n/100, c.rows(), n)
	if c.rows() >= uint64(n) {
		t.Fatalf("the replay finished before the kill; make it longer")
	}
	second := start(t, "wfsensor-replay-2", s.dir, filepath.Join(s.bin, "wfsensor"), args...)
	if err := second.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("second replay: %v\n%s", err, tail(second.log))
	}
	summary := lastLine(second.log)
	t.Logf("second replay: %s", summary)
	var recs, batches, dups int
	if _, err := fmt.Sscanf(summary, "replay of 1 files: %d records sent in %d batches (%d already stored)", &recs, &batches, &dups); err != nil {
		t.Fatalf("parse summary %q: %v", summary, err)
	}
	if dups == 0 || dups >= batches {
		t.Errorf("second replay: %d of %d batches were already stored; want some but not all (killed mid-replay)", dups, batches)
	}
	s.waitRows(uint64(n), 2*time.Minute)
	run.stop(t, 90*time.Second)
	s.exact(uint64(n), 0)
}

// e) 10,000 poison records mixed into clean traffic.
func TestPoisonRecords(t *testing.T) {
	s := newSystem(t, 5)
	each := 4 // every 4th of 40,000 records: exactly 10,000 poison ones
	if long() {
		each = 50 // 500,000 records
	}
	run := s.run("watchfloor-run")
	steady(t, s, each, each*10000, func(t *testing.T) func() { return nil })
	run.stop(t, 90*time.Second)
	c, _ := s.counts()
	if c.dead != 10000 {
		t.Errorf("dead letters = %d, want 10000", c.dead)
	}
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	s := string(b)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}

// pidWithArg finds the process this test started whose command line holds
// arg (a path under the test's own temporary directory).
func pidWithArg(t *testing.T, arg string) int {
	des, _ := os.ReadDir("/proc")
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + de.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), arg) {
			return pid
		}
	}
	return 0
}

func waitPortClosed(t *testing.T, port int) {
	for i := 0; i < 600 && portOpen(port); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if portOpen(port) {
		t.Fatalf("port %d still open after 60s", port)
	}
}
