package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/internal/chtest"
)

func TestSinkValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		name string
		edit func(*SinkConfig)
		want string
	}{
		{"database", func(c *SinkConfig) { c.Database = "a-b" }, "--database"},
		{"duration", func(c *SinkConfig) { c.Duration = time.Millisecond }, "--duration"},
		{"batch rows", func(c *SinkConfig) { c.BatchRows = 10 }, "--batch-rows"},
		{"writers", func(c *SinkConfig) { c.Writers = 0 }, "--writers"},
		{"agencies", func(c *SinkConfig) { c.Agencies = 0 }, "--agencies"},
		{"compression", func(c *SinkConfig) { c.Sink.Compression = "gzip" }, "clickhouse.compression"},
		{"insert conns", func(c *SinkConfig) { c.Sink.InsertConns = 0 }, "clickhouse.insert_conns"},
		{"block rows", func(c *SinkConfig) { c.Sink.BlockRows = 1 }, "clickhouse.block_rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultSinkConfig()
			tt.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if c := defaultSinkConfig(); c.Validate() != nil {
		t.Errorf("default config: %v", c.Validate())
	}
}

// TestSinkBenchSmoke runs `wfbench sink` briefly against the test server:
// every row written is in events, with sane figures.
func TestSinkBenchSmoke(t *testing.T) {
	addr, db := chtest.Database(t)
	cfg := defaultSinkConfig()
	cfg.ClickHouse, cfg.Database, cfg.CHPidFile = addr, db, ""
	cfg.Duration, cfg.BatchRows, cfg.Writers = 2*time.Second, 4000, 2
	cfg.Sink.BlockRows = 1000
	cfg.KeepDatabase = true // chtest drops it
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := benchSink(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Rows == 0 || res.RowsStored != res.Rows {
		t.Errorf("wrote %d rows (%d failed writes, first %q), events hold %d", res.Rows, res.Errors, res.FirstError, res.RowsStored)
	}
	if res.RowsPerSec <= 0 || res.ClientUSRow <= 0 || res.Compression <= 1 || res.DiskBytesRow <= 0 || res.Parts == 0 {
		t.Errorf("figures: %+v", res)
	}
	var out strings.Builder
	res.print(&out)
	for _, want := range []string{"throughput", "cpu per row", "parts", "compression"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
