package sink_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// dnsBatch builds n DNS events shaped like Zeek dns.log records.
func dnsBatch(n int, seq int) []schemas.Event {
	evs := make([]schemas.Event, n)
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range evs {
		ev := &evs[i]
		ev.ID = schemas.EventID(fmt.Sprintf("sensor-1:%d", seq), i)
		ev.Agency = []string{"doj", "dhs", "hhs", "ed"}[i%4]
		ev.Sensor = "sensor-1"
		ev.Format = "zeek_dns"
		ev.Time = base.Add(time.Duration(seq*n+i) * time.Millisecond)
		ev.ClassUID, ev.CategoryUID, ev.ActivityID, ev.SeverityID = schemas.ClassDNS, 4, 6, 1
		ev.Metadata = schemas.Metadata{Product: "Zeek", Vendor: "Zeek", LogName: "dns", UID: fmt.Sprintf("C%08x", i)}
		ev.Src = schemas.Endpoint{IP: fmt.Sprintf("10.%d.%d.%d", i%4, i/256%256, i%256), Port: uint16(30000 + i%30000)}
		ev.Dst = schemas.Endpoint{IP: "10.0.0.53", Port: 53}
		ev.Protocol = "udp"
		ev.DNS = schemas.DNS{QueryHostname: fmt.Sprintf("host%d.example%d.com", i%500, i%37), QueryType: "A", QueryClass: "C_INTERNET",
			RCode: "NOERROR", RCodeID: 0, TransactionID: uint32(i), Answers: []string{"192.0.2.1"}, TTLs: []uint32{300}, RTT: 0.0012}
		ev.AddObservable(schemas.ObservableHostname, "query.hostname", ev.DNS.QueryHostname)
		ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
		ev.AddUnmapped("AA", "F")
		ev.AddUnmapped("RD", "T")
		ev.Raw = fmt.Sprintf(`{"ts":%d.%03d,"uid":"C%08x","id.orig_h":"%s","id.orig_p":%d,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","trans_id":%d,"query":"%s","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["192.0.2.1"],"TTLs":[300.0],"rejected":false}`,
			ev.Time.Unix(), ev.Time.Nanosecond()/1e6, i, ev.Src.IP, ev.Src.Port, i, ev.DNS.QueryHostname)
	}
	return evs
}

// BenchmarkWriteDNS measures sink throughput into the test server: one op
// is one 50,000-row native batch of DNS events (plus the rollup views the
// insert feeds). Figures: rows/s, and the on-disk bytes per row and
// compression ratio ClickHouse reports for the events table.
func BenchmarkWriteDNS(b *testing.B) {
	b.Run("with-rollups", func(b *testing.B) { benchWriteDNS(b, false, nil) })
	// Without the two views on events: what the rollups cost per insert.
	b.Run("no-rollups", func(b *testing.B) { benchWriteDNS(b, true, nil) })
	// The wire and concurrency settings, one at a time from the defaults.
	for _, c := range []string{"lz4", "zstd", "none"} {
		b.Run("compression-"+c, func(b *testing.B) { benchWriteDNS(b, false, func(c_ *sink.Config) { c_.Compression = c }) })
	}
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("insert-conns-%d", n), func(b *testing.B) { benchWriteDNS(b, false, func(c *sink.Config) { c.InsertConns = n }) })
	}
	for _, n := range []int{4096, 8192, 16384, 50000} {
		b.Run(fmt.Sprintf("block-rows-%d", n), func(b *testing.B) { benchWriteDNS(b, false, func(c *sink.Config) { c.BlockRows = n }) })
	}
}

func benchWriteDNS(b *testing.B, dropViews bool, edit func(*sink.Config)) {
	s := openSinkWith(b, edit)
	ctx := context.Background()
	if dropViews {
		for _, v := range []string{"events_per_minute_mv", "dns_per_domain_hour_mv"} {
			if err := s.Conn().Exec(ctx, "DROP TABLE "+s.Database()+"."+v); err != nil {
				b.Fatal(err)
			}
		}
	}
	const n = 50000
	batches := make([]*sink.Rows, 4)
	for i := range batches {
		batches[i] = &sink.Rows{Events: dnsBatch(n, i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := s.Write(ctx, batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/el.Seconds(), "rows/s")
	var rows, compressed, uncompressed, parts uint64
	err := s.Conn().QueryRow(ctx, "SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes), count() FROM system.parts WHERE database = ? AND table = 'events' AND active", s.Database()).
		Scan(&rows, &compressed, &uncompressed, &parts)
	if err != nil {
		b.Fatal(err)
	}
	if rows > 0 && compressed > 0 {
		b.ReportMetric(float64(compressed)/float64(rows), "disk-B/row")
		b.ReportMetric(float64(uncompressed)/float64(compressed), "compression")
		b.ReportMetric(float64(parts), "parts")
	}
}
