package schemas_test

import (
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// The DDL follows the server: 18.16 gets plain String and DateTime columns
// and no TTL (the partition-drop job keeps retention there).
func ExampleFeaturesFor() {
	for _, v := range []string{"18.16.1", "23.8.2.7"} {
		f, _ := schemas.FeaturesFor(v)
		o := schemas.DDLOptions{Database: "watchfloor", Features: f, EventRetentionDays: 365}
		events := schemas.AllStatements(o)[1].SQL
		fmt.Printf("%s: TTL=%v row policies=%v agency column: %s\n", v, strings.Contains(events, "TTL"), f.RowPolicies,
			strings.TrimSuffix(strings.TrimSpace(strings.Split(events, "\n")[2]), ","))
	}
	// Output:
	// 18.16.1: TTL=false row policies=false agency column: agency String
	// 23.8.2.7: TTL=true row policies=true agency column: agency LowCardinality(String)
}
