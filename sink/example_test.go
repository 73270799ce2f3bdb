package sink_test

import (
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/watchfloor/watchfloor/sink"
)

// The pipeline settles a message by the class of the error: permanent
// errors become dead letters, the rest are retried.
func ExampleIsPermanent() {
	for _, err := range []error{
		sink.Permanent(errors.New("parse zeek dns line 3: unexpected end of JSON")),
		&clickhouse.Exception{Code: 252, Message: "Too many parts"},
		&clickhouse.Exception{Code: 53, Message: "Type mismatch"},
	} {
		fmt.Println(sink.IsPermanent(err))
	}
	// Output:
	// true
	// false
	// true
}
