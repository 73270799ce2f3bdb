package sink_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

func dnsEvent(agency string, i int, at time.Time, domain string, rcode int32) schemas.Event {
	ev := sampleEvent(i)
	ev.ID = schemas.EventID(agency+":"+at.Format(time.RFC3339), i)
	ev.Agency = agency
	ev.Time = at
	ev.DNS.QueryHostname = domain
	ev.DNS.RCodeID = rcode
	return ev
}

func TestRetentionDropsBackdatedPartitions(t *testing.T) {
	s := openSink(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	old := now.AddDate(0, 0, -400)  // past the 365-day event retention
	edge := now.AddDate(0, 0, -364) // inside it
	rows := &sink.Rows{}
	for i := 0; i < 5; i++ {
		rows.Events = append(rows.Events, dnsEvent("agency-a", i, old, "old.example", 0), dnsEvent("agency-a", i, edge, "edge.example", 0))
	}
	rows.Findings = append(rows.Findings, schemas.Finding{ID: schemas.FindingID(rows.Events[0].ID, "r"), EventID: rows.Events[0].ID,
		Agency: "agency-a", Time: old, RuleID: "r", RuleLevel: "high"}) // 400 days < 3 years: kept
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	dropped, err := s.DropExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"events/" + old.Format("20060102"):            true,
		"events_per_minute/" + old.Format("200601"):   true,
		"dns_per_domain_hour/" + old.Format("200601"): true,
	}
	got := map[string]bool{}
	for _, d := range dropped {
		got[d.Table+"/"+d.Partition] = true
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dropped %v, want %v", got, want)
	}
	db := s.Database()
	conn := s.Conn()
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".events WHERE dns_query_hostname = 'old.example'"); n != 0 {
		t.Errorf("%d expired events left", n)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".events WHERE dns_query_hostname = 'edge.example'"); n != 5 {
		t.Errorf("events inside retention = %d, want 5", n)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".detections"); n != 1 {
		t.Errorf("detections = %d, want 1 (3-year retention)", n)
	}
	// A second run finds nothing more to drop.
	if again, err := s.DropExpired(ctx, now); err != nil || len(again) != 0 {
		t.Errorf("second DropExpired = %v, %v; want nothing", again, err)
	}
}

// TestRollupsMatchDirectCounts writes a mix of agencies, classes, domains
// and rcodes across hours, and compares each rollup with the same figure
// counted on the base table.
func TestRollupsMatchDirectCounts(t *testing.T) {
	s := openSink(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 30, 22, 58, 0, 0, time.UTC)
	for batch := 0; batch < 3; batch++ { // several inserts: several parts to sum over
		rows := &sink.Rows{}
		for i := 0; i < 300; i++ {
			agency := []string{"agency-a", "agency-b"}[i%2]
			at := base.Add(time.Duration(batch*300+i) * 7 * time.Second)
			ev := dnsEvent(agency, batch*1000+i, at, fmt.Sprintf("d%d.example", i%7), int32(i%4))
			if i%5 == 0 {
				ev.ClassUID = schemas.ClassAuthentication
			}
			rows.Events = append(rows.Events, ev)
			if i%11 == 0 {
				rows.Findings = append(rows.Findings, schemas.Finding{ID: schemas.FindingID(ev.ID, "r"), EventID: ev.ID, Agency: agency,
					Time: at, RuleID: fmt.Sprintf("rule-%d", i%3), RuleLevel: "high"})
			}
		}
		if err := s.Write(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	db := s.Database()
	tests := []struct{ name, rollup, direct string }{
		{"events per agency, class and minute",
			"SELECT agency, class_uid, minute, sum(events) AS n FROM $db.events_per_minute GROUP BY agency, class_uid, minute",
			"SELECT agency, class_uid, toStartOfMinute(time) AS minute, count() AS n FROM $db.events GROUP BY agency, class_uid, minute"},
		{"DNS per agency, domain and hour",
			"SELECT agency, hour, domain, sum(queries), sum(nxdomain) FROM $db.dns_per_domain_hour GROUP BY agency, hour, domain",
			"SELECT agency, toStartOfHour(time) AS hour, dns_query_hostname, count(), countIf(dns_rcode_id = 3) FROM $db.events WHERE class_uid = 4003 GROUP BY agency, hour, dns_query_hostname"},
		{"detections per rule and day",
			"SELECT agency, day, rule_id, rule_level, sum(detections) FROM $db.detections_per_rule_day GROUP BY agency, day, rule_id, rule_level",
			"SELECT agency, toDate(time), rule_id, rule_level, count() FROM $db.detections GROUP BY agency, toDate(time), rule_id, rule_level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Compare the two result sets as a whole, order-independently.
			q := "SELECT count(), sum(cityHash64(*)) FROM (%s)"
			var n1, n2, h1, h2 uint64
			r := func(s string) string { return fmt.Sprintf(q, replaceDB(s, db)) }
			if err := s.Conn().QueryRow(ctx, r(tt.rollup)).Scan(&n1, &h1); err != nil {
				t.Fatal(err)
			}
			if err := s.Conn().QueryRow(ctx, r(tt.direct)).Scan(&n2, &h2); err != nil {
				t.Fatal(err)
			}
			if n1 == 0 || n1 != n2 || h1 != h2 {
				t.Errorf("rollup has %d groups (hash %x), direct count %d groups (hash %x)", n1, h1, n2, h2)
			}
		})
	}
}
