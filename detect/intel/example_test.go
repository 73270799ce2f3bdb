package intel_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/detect/intel"
	"github.com/watchfloor/watchfloor/schemas"
)

func Example() {
	b := intel.NewBuilder(nil, 0)
	feed := "# known C2\nevil.example\n203.0.113.0/24\n"
	if _, err := b.Load("acme-c2", intel.FormatList, strings.NewReader(feed), time.Now()); err != nil {
		panic(err)
	}
	m, err := intel.NewMatcher(intel.DefaultConfig(), b.Build())
	if err != nil {
		panic(err)
	}
	ev := schemas.Event{ClassUID: schemas.ClassDNS, Agency: "agency1"}
	ev.DNS.QueryHostname = "beacon.evil.example"
	ev.DNS.Answers = []string{"203.0.113.9"}
	for _, f := range m.Eval(&ev, nil) {
		fmt.Println(f.RuleID, f.RuleLevel, f.Tags[1], f.Tags[2])
	}
	// Output:
	// intel.acme-c2 high intel.feed:acme-c2 intel.indicator:evil.example
	// intel.acme-c2 high intel.feed:acme-c2 intel.indicator:203.0.113.0/24
}
