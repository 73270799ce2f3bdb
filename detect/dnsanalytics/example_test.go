package dnsanalytics_test

import (
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/detect/dnsanalytics"
	"github.com/watchfloor/watchfloor/schemas"
)

func ExampleAnalyzer_Eval() {
	a, err := dnsanalytics.New(dnsanalytics.DefaultConfig(), nil, nil) // no DGA model: DGA off
	if err != nil {
		panic(err)
	}
	ev := schemas.Event{ClassUID: schemas.ClassDNS, ActivityID: 1, Agency: "agency1"}
	ev.DNS.QueryHostname = strings.Repeat("mzxw6ytboi", 6) + ".t.exfil.example"
	for _, f := range a.Eval(&ev, nil) {
		fmt.Println(f.RuleID, f.RuleLevel)
	}
	// Output:
	// dns.tunnel.name medium
}
