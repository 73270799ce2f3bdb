package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// envExamplePath is the documented environment file for `watchfloor run`
// that the compose file, the Kubernetes ConfigMap and the deploy tests use.
const envExamplePath = "../../deploy/config/watchfloor.env"

// envExample renders every flag of `watchfloor run` as a commented-out
// variable at its default, with its meaning.
func envExample() string {
	var b strings.Builder
	b.WriteString(`# Environment for "watchfloor run" (and "watchfloor migrate", which reads the
# clickhouse.* and log.* keys). One variable per flag: --clickhouse.addr is
# WATCHFLOOR_CLICKHOUSE_ADDR. Flags win over the environment.
#
# Generated from the real flags by
#   go test ./cmd/watchfloor -run TestEnvExample -update
# and checked by that test, so it cannot drift. Every key is listed at its
# default, commented out; uncomment what you change. Keep passwords out of
# this file in production: put WATCHFLOOR_CLICKHOUSE_PASSWORD and
# WATCHFLOOR_NATS_PASSWORD in a secret (see deploy/k8s/secret.example.yaml).
`)
	var cfg config
	flagSet("run", &cfg, true).VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&b, "\n# --%s: %s", f.Name, f.Usage)
		if f.DefValue != "" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "\n#%s=%s\n", envName(f.Name), f.DefValue)
	})
	return b.String()
}

func TestEnvExample(t *testing.T) {
	want := envExample()
	got, err := os.ReadFile(envExamplePath)
	if err == nil && string(got) == want {
		return
	}
	if *update {
		if err := os.WriteFile(envExamplePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is stale or missing (%v): run `go test ./cmd/watchfloor -run TestEnvExample -update`", envExamplePath, err)
}
