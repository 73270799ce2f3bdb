package backtest_test

import (
	"fmt"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/backtest"
)

func ExampleCompile() {
	r, err := detect.ParseRule([]byte(`title: WPAD
id: wpad
level: low
logsource: {category: dns}
detection:
  sel:
    query: ['wpad', 'wpad.*']
  condition: sel
`))
	if err != nil {
		panic(err)
	}
	q, err := backtest.Compile(r, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(q.Where)
	// Output: (class_uid IN (4003)) AND ((if(dns_query_hostname != '', dns_query_hostname, unmapped_values[indexOf(unmapped_keys, 'query')]) != '') AND ((lowerUTF8(if(dns_query_hostname != '', dns_query_hostname, unmapped_values[indexOf(unmapped_keys, 'query')])) = 'wpad') OR (startsWith(lowerUTF8(if(dns_query_hostname != '', dns_query_hostname, unmapped_values[indexOf(unmapped_keys, 'query')])), 'wpad.'))))
}
