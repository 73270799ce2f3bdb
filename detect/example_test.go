package detect_test

import (
	"fmt"
	"log"
	"time"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/schemas"
)

func Example() {
	rule, err := detect.ParseRule([]byte(`
title: DNS Query for a Dynamic DNS Provider Host
id: 0f2a4f3e-8d3b-4f55-9a64-3f0a2b7c9d10
level: medium
tags: [attack.command-and-control, attack.t1568]
logsource:
    category: dns
detection:
    selection:
        query|endswith: ['.duckdns.org', '.myftp.biz']
    filter:
        src_ip|cidr: 10.99.0.0/16   # the lab network
    condition: selection and not filter
`))
	if err != nil {
		log.Fatal(err)
	}
	rs, err := detect.Compile([]*detect.Rule{rule}, detect.Config{})
	if err != nil {
		log.Fatal(err)
	}

	ev := &schemas.Event{
		ID:       schemas.EventID("sensor-7:42", 0),
		Agency:   "doj",
		Format:   "zeek_dns",
		ClassUID: schemas.ClassDNS,
		Src:      schemas.Endpoint{IP: "10.1.2.3", Port: 53211},
		DNS:      schemas.DNS{QueryHostname: "HNHMRKW.myftp.biz", QueryType: "A"},
	}
	var findings []schemas.Finding // reuse across events: findings = rs.Eval(ev, findings[:0])
	findings = rs.Eval(ev, findings)
	for _, f := range findings {
		fmt.Println(f.RuleLevel, f.SeverityID, f.RuleTitle, f.Tags)
	}
	// Output:
	// medium 3 DNS Query for a Dynamic DNS Provider Host [attack.command-and-control attack.t1568]
}

func ExampleCorrelator() {
	rules, err := detect.ParseRules([]byte(`
title: Failed logon
id: failed-logon
name: failed_logon
level: low
logsource: {product: linux, service: sshd}
detection:
    sel: {message|startswith: 'Failed password'}
    condition: sel
---
title: Password guessing
id: ssh-bruteforce
level: high
tags: [attack.credential-access, attack.t1110.001]
correlation:
    type: event_count
    rules: [failed_logon]
    group-by: [src_ip]
    timespan: 5m
    condition: {gte: 3}
`))
	if err != nil {
		log.Fatal(err)
	}
	rs, err := detect.Compile(rules, detect.Config{})
	if err != nil {
		log.Fatal(err)
	}
	corr, err := detect.NewCorrelator(rs, detect.DefaultCorrelatorConfig())
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Date(2025, 1, 20, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		ev := &schemas.Event{
			ID: schemas.EventID("sensor-2:9", i), Agency: "doj", Format: "syslog", ProcessName: "sshd",
			Time:    t0.Add(time.Duration(i) * time.Minute),
			Message: "Failed password for root from 203.0.113.7 port 4242 ssh2",
			Src:     schemas.Endpoint{IP: "203.0.113.7"},
		}
		hits := rs.EvalHits(ev, nil)
		findings := rs.Findings(ev, hits, nil) // the base rule only feeds the correlation
		findings = corr.Observe(ev, hits, findings)
		for _, f := range findings {
			fmt.Println(f.RuleID, f.RuleLevel, f.Techniques, len(f.EventIDs), "events")
		}
	}
	// Output:
	// ssh-bruteforce high [T1110.001] 3 events
}

func ExampleParseGlob() {
	for _, t := range detect.ParseGlob(`\*.exe* -enc?`, true) {
		switch t.Kind {
		case detect.GlobStar:
			fmt.Print("[any]")
		case detect.GlobOne:
			fmt.Print("[one]")
		case detect.GlobDash:
			fmt.Print("[dash]")
		default:
			fmt.Print(string(t.Rune))
		}
	}
	fmt.Println()
	// Output: *.exe[any] [dash]enc[one]
}
