package detect_test

import (
	"fmt"
	"log"

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
