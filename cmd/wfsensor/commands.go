package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest/sensor"
	"github.com/watchfloor/watchfloor/normalize"
)

const replayUsage = `wfsensor replay [flags] FILE...

Publishes each FILE once, from its start to its end, then waits until the
stream has acknowledged every batch. Message ids are derived from the file's
absolute path and each batch's byte offset, so replaying the same file again
(with the same --batch-records) within the stream's duplicate window (10m by
default) stores nothing twice. A progress bar is drawn on stderr when it is a
terminal; a summary line is printed on stdout at the end.`

const replayExamples = `  wfsensor replay --agency doj --format zeek_dns /var/log/zeek/dns.log
  WFSENSOR_PASSWORD=secret wfsensor replay --nats nats://nats.soc:4222 --user doj-sensor \
      --agency doj --format suricata_eve --compress eve-*.json
  wfsensor replay --agency doj --format auto conn.log eve.json auth.log
`

const tailUsage = `wfsensor tail [flags] FILE...

Follows each FILE as it grows, like tail -F: from its end (or its start with
--from-start), through rotation by rename+create and copytruncate. A file that
does not exist yet is waited for. Stops on SIGINT/SIGTERM after flushing and
collecting the acknowledgements (at most --drain-timeout).`

const tailExamples = `  wfsensor tail --agency doj --format zeek_dns /opt/zeek/logs/current/dns.log
  wfsensor tail --agency dhs --format suricata_eve --linger 1s --compress /var/log/suricata/eve.json
`

const syslogUsage = `wfsensor syslog [flags]

Receives syslog messages over UDP (one message per datagram, up to 64 KiB) and
TCP (RFC 6587: octet counting or newline framing, detected per message) and
publishes them as format syslog. Newlines inside a message become "#012".`

const syslogExamples = `  wfsensor syslog --agency doj --udp :514 --tcp :514
  wfsensor syslog --agency dhs --udp "" --tcp 10.0.0.5:6514 --max-message 262144 --max-conns 1000
`

func helpOK(err error) error {
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func runReplay(ctx context.Context, e env, args []string) error {
	c := newCommon("replay", true, replayUsage, replayExamples)
	if err := c.parse(e, args); err != nil {
		return helpOK(err)
	}
	cfg, format, err := c.config(e)
	if err != nil {
		return err
	}
	files := c.fs.Args()
	if len(files) == 0 {
		return usageError{errors.New("replay needs at least one FILE (see 'wfsensor replay --help')")}
	}
	sizes := make([]int64, len(files))
	var total int64
	for i, path := range files {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("replay: %s is not a regular file", path)
		}
		sizes[i] = fi.Size()
		total += fi.Size()
	}
	log := c.logger(e)
	js, closeConn, err := c.connect(log)
	if err != nil {
		return err
	}
	defer closeConn()

	start := time.Now()
	var t tally
	var done int64
	var cur atomic.Int64
	var bar *progress
	var wg sync.WaitGroup
	barCtx, stopBar := context.WithCancel(ctx)
	if isTerminal(e.stderr) {
		bar = &progress{w: e.stderr, total: total, start: start}
		wg.Go(func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-barCtx.Done():
					return
				case <-tick.C:
					bar.render(atomic.LoadInt64(&done)+cur.Load(), t.snapshot().Added)
				}
			}
		})
	}
	dctx, cancel := drainContext(ctx, c.drain)
	defer cancel()
	var runErr error
	for i, path := range files {
		if ctx.Err() != nil {
			break
		}
		f, err := formatFor(e.formats(), format, path)
		if err != nil {
			runErr = err
			break
		}
		if format == nil {
			log.Info("format detected", "path", path, "format", f.Name)
		}
		if err := replayFile(ctx, dctx, js, cfg, f, path, &cur, &t, log); err != nil {
			runErr = err
			break
		}
		atomic.AddInt64(&done, sizes[i])
		cur.Store(0)
	}
	stopBar()
	wg.Wait()
	st := t.snapshot()
	if bar != nil {
		bar.render(atomic.LoadInt64(&done)+cur.Load(), st.Added)
		bar.finish()
	}
	fmt.Fprintln(e.stdout, summary(fmt.Sprintf("replay of %d files", len(files)), st, time.Since(start)))
	if runErr == nil && ctx.Err() != nil {
		runErr = fmt.Errorf("replay interrupted: %w", context.Cause(ctx))
	}
	return runErr
}

func replayFile(ctx, dctx context.Context, js jetstream.JetStream, cfg sensor.Config, format *normalize.Format,
	path string, cur *atomic.Int64, t *tally, log *slog.Logger) error {
	key, err := sensor.FileKey(path)
	if err != nil {
		return err
	}
	pub, err := sensor.NewPublisher(js, cfg, sensor.Source{Format: format, Key: key, Positional: true}, log.With("path", path))
	if err != nil {
		return err
	}
	t.add(pub)
	defer t.finish(pub)
	f, err := os.Open(path)
	if err != nil {
		_ = pub.Close(dctx)
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	rerr := sensor.Replay(ctx, f, pub, cur)
	cerr := pub.Close(dctx)
	if rerr != nil && ctx.Err() == nil {
		return fmt.Errorf("replay %s: %w", path, rerr)
	}
	if cerr != nil {
		return fmt.Errorf("replay %s: %w", path, cerr)
	}
	return nil
}

func runTail(ctx context.Context, e env, args []string) error {
	c := newCommon("tail", true, tailUsage, tailExamples)
	var fromStart bool
	var poll time.Duration
	c.fs.BoolVar(&fromStart, "from-start", false, "read each file from its start instead of its end")
	c.fs.DurationVar(&poll, "poll", 250*time.Millisecond, "how often to look for new lines, rotation and truncation (10ms to 1m)")
	c.fs.DurationVar(&c.statsEvery, "stats-interval", time.Minute, "log the counters this often (0 turns it off)")
	if err := c.parse(e, args); err != nil {
		return helpOK(err)
	}
	cfg, format, err := c.config(e)
	if err != nil {
		return err
	}
	if poll < 10*time.Millisecond || poll > time.Minute {
		return usageError{fmt.Errorf("--poll must be between 10ms and 1m, got %s", poll)}
	}
	if c.statsEvery < 0 {
		return usageError{fmt.Errorf("--stats-interval must not be negative, got %s", c.statsEvery)}
	}
	files := c.fs.Args()
	if len(files) == 0 {
		return usageError{errors.New("tail needs at least one FILE (see 'wfsensor tail --help')")}
	}
	log := c.logger(e)
	js, closeConn, err := c.connect(log)
	if err != nil {
		return err
	}
	defer closeConn()

	start := time.Now()
	var t tally
	pubs := make([]*sensor.Publisher, 0, len(files))
	for _, path := range files {
		f, err := formatFor(e.formats(), format, path)
		if err != nil {
			closeAll(ctx, pubs)
			return err
		}
		name, err := sensor.FileKey(path)
		if err != nil {
			closeAll(ctx, pubs)
			return err
		}
		pub, err := sensor.NewPublisher(js, cfg, sensor.Source{Format: f, Name: "tail-" + name}, log.With("path", path, "format", f.Name))
		if err != nil {
			closeAll(ctx, pubs)
			return err
		}
		pubs = append(pubs, pub)
		t.add(pub)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i, path := range files {
		wg.Go(func() {
			err := sensor.Tail(runCtx, sensor.TailConfig{Path: path, FromStart: fromStart, Poll: poll}, pubs[i], log)
			if err != nil {
				cancel(err)
			}
		})
	}
	wg.Go(func() { logStats(runCtx, log, &t, c.statsEvery) })
	log.Info("tailing", "files", len(files), "format", c.format, "agency", cfg.Agency)
	wg.Wait()

	dctx, dcancel := drainContext(runCtx, c.drain)
	defer dcancel()
	closeErr := closeAll(dctx, pubs)
	for _, p := range pubs {
		t.finish(p)
	}
	fmt.Fprintln(e.stdout, summary("tail", t.snapshot(), time.Since(start)))
	if err := context.Cause(runCtx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("tail: %w", err)
	}
	return closeErr
}

func runSyslog(ctx context.Context, e env, args []string) error {
	c := newCommon("syslog", false, syslogUsage, syslogExamples)
	sc := sensor.DefaultSyslogConfig()
	c.fs.StringVar(&sc.UDPAddr, "udp", sc.UDPAddr, `UDP listen address host:port ("" turns UDP off)`)
	c.fs.StringVar(&sc.TCPAddr, "tcp", sc.TCPAddr, `TCP listen address host:port ("" turns TCP off)`)
	c.fs.IntVar(&sc.MaxTCPMessage, "max-message", sc.MaxTCPMessage, "largest TCP message kept whole, in bytes (480 to 524288); longer ones are truncated and flagged")
	c.fs.IntVar(&sc.MaxConns, "max-conns", sc.MaxConns, "concurrent TCP connections (1 to 65536); more wait in the accept backlog")
	c.fs.DurationVar(&c.statsEvery, "stats-interval", time.Minute, "log the counters this often (0 turns it off)")
	if err := c.parse(e, args); err != nil {
		return helpOK(err)
	}
	cfg, _, err := c.config(e)
	if err != nil {
		return err
	}
	if err := sc.Validate(); err != nil {
		return usageError{fmt.Errorf("%s: %w", syslogFlag(err), err)}
	}
	if c.fs.NArg() > 0 {
		return usageError{fmt.Errorf("syslog takes no arguments, got %q", c.fs.Args())}
	}
	if c.statsEvery < 0 {
		return usageError{fmt.Errorf("--stats-interval must not be negative, got %s", c.statsEvery)}
	}
	log := c.logger(e)
	format, ok := e.formats().Lookup("syslog")
	if !ok {
		format = &normalize.Format{Name: "syslog"}
		log.Warn("format syslog is not registered in this build; publishing to soc.raw.<agency>.syslog anyway")
	}
	js, closeConn, err := c.connect(log)
	if err != nil {
		return err
	}
	defer closeConn()
	pub, err := sensor.NewPublisher(js, cfg, sensor.Source{Format: format, Name: "syslog"}, log)
	if err != nil {
		return err
	}
	var t tally
	t.add(pub)
	start := time.Now()
	dctx, dcancel := drainContext(ctx, c.drain)
	defer dcancel()
	sl, err := sensor.NewSyslog(sc, pub, log)
	if err != nil {
		_ = pub.Close(dctx)
		return err
	}
	if err := sl.Listen(ctx); err != nil {
		_ = pub.Close(dctx)
		return err
	}
	log.Info("listening for syslog", "udp", addrString(sl.UDPAddr()), "tcp", addrString(sl.TCPAddr()), "agency", cfg.Agency)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { logStats(runCtx, log, &t, c.statsEvery) })
	serveErr := sl.Serve(runCtx)
	cancel()
	wg.Wait()
	closeErr := pub.Close(dctx)
	t.finish(pub)
	fmt.Fprintln(e.stdout, summary("syslog", t.snapshot(), time.Since(start)))
	return errors.Join(serveErr, closeErr)
}

func syslogFlag(err error) string {
	for _, kf := range []struct{ key, flag string }{
		{"syslog.udp", "--udp/--tcp"}, {"syslog.max_message", "--max-message"}, {"syslog.max_conns", "--max-conns"},
	} {
		if len(err.Error()) >= len(kf.key) && err.Error()[:len(kf.key)] == kf.key {
			return kf.flag
		}
	}
	return "syslog"
}

func addrString(a interface{ String() string }) string {
	if a == nil || fmt.Sprint(a) == "<nil>" {
		return "off"
	}
	return a.String()
}

// closeAll closes the publishers concurrently and joins their errors.
func closeAll(ctx context.Context, pubs []*sensor.Publisher) error {
	errs := make([]error, len(pubs))
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Go(func() { errs[i] = p.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tally sums the stats of live and finished publishers.
type tally struct {
	mu   sync.Mutex
	done sensor.Stats
	live []*sensor.Publisher
}

func (t *tally) add(p *sensor.Publisher) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.live = append(t.live, p)
}

func (t *tally) finish(p *sensor.Publisher) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, q := range t.live {
		if q == p {
			t.live = append(t.live[:i], t.live[i+1:]...)
			t.done = t.done.Add(p.Stats())
			return
		}
	}
}

func (t *tally) snapshot() sensor.Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.done
	for _, p := range t.live {
		s = s.Add(p.Stats())
	}
	return s
}

// logStats logs the counters every d until ctx ends.
func logStats(ctx context.Context, log *slog.Logger, t *tally, d time.Duration) {
	if d <= 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s := t.snapshot()
			log.Info("stats", "records", s.Records, "batches", s.Batches, "retries", s.Retries,
				"pending_batches", s.Pending, "oversize", s.Oversize, "failed", s.Failed,
				"spooled", s.Spooled, "dropped", s.Dropped)
		}
	}
}
