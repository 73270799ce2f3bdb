package sink_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/schemas"
)

// TestClusterDDLParses sends the cluster variant of the 18.16 DDL to the
// real server. The server has no such cluster (nor ZooKeeper), so every
// statement must fail, but after parsing: a syntax error (code 62) fails
// the test. The 23.8 branch cannot be checked this way here (18.16 does not
// parse DateTime64, codecs or TTL); its golden files are in schemas.
func TestClusterDDLParses(t *testing.T) {
	addr, db := chtest.Database(t)
	conn := chtest.Conn(t, addr)
	f, err := schemas.FeaturesFor("18.16.1")
	if err != nil {
		t.Fatal(err)
	}
	o := schemas.DDLOptions{Database: db, Features: f, Cluster: "wf_no_such_cluster", EventRetentionDays: 365}
	for _, st := range schemas.AllStatements(o) {
		err := conn.Exec(context.Background(), st.SQL)
		var ex *clickhouse.Exception
		switch {
		case err == nil:
			t.Errorf("%s: succeeded on a server without the cluster", st.SQL)
		case !errors.As(err, &ex):
			t.Errorf("%s: %v (not a server exception)", st.SQL, err)
		case ex.Code == 62:
			t.Errorf("syntax error: %v\n%s", err, st.SQL)
		default:
			t.Logf("code %d (parsed): %.80s", ex.Code, st.SQL)
		}
	}
}
