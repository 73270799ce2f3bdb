package sensor_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest/sensor"
	"github.com/watchfloor/watchfloor/normalize"
)

// Replaying a file: positional message ids make a second run a no-op.
func ExamplePublisher() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	nc, err := nats.Connect(nats.DefaultURL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		log.Error("connect", "err", err)
		return
	}
	defer nc.Close()
	cfg := sensor.DefaultConfig()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	cfg.SensorID, cfg.Agency = "zeek-01", "doj"
	format, _ := normalize.Builtin().Lookup("zeek_dns")

	key, _ := sensor.FileKey("dns.log")
	pub, err := sensor.NewPublisher(js, cfg, sensor.Source{Format: format, Key: key, Positional: true}, log)
	if err != nil {
		log.Error("publisher", "err", err)
		return
	}
	f, _ := os.Open("dns.log")
	defer f.Close()
	ctx := context.Background()
	if err := sensor.Replay(ctx, f, pub, nil); err != nil {
		log.Error("replay", "err", err)
	}
	closeCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := pub.Close(closeCtx); err != nil { // flushes and waits for every PubAck
		log.Error("close", "err", err)
	}
	log.Info("done", "records", pub.Stats().Records)
}
