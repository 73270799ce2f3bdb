package rulebook_test

import (
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/detect/rulebook"
)

// Generate the NATS authorization block that keeps pipelines and sensors
// from writing the rules bucket.
func ExampleAuthorizationConfig() {
	conf, err := rulebook.AuthorizationConfig([]rulebook.User{
		{Name: "alice", Password: "s3cret", Role: rulebook.RoleEngineer},
		{Name: "pipeline", Password: "p1pe", Role: rulebook.RolePipeline},
		{Name: "sensor-doj", Password: "s3nsor", Role: rulebook.RoleSensor, Agency: "doj"},
	})
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(conf, "\n") {
		if strings.Contains(line, "role") || strings.Contains(line, "soc.raw.doj") {
			fmt.Println(strings.TrimSpace(line))
		}
	}
	// Output:
	// { # role engineer
	// { # role pipeline
	// { # role sensor, agency doj
	// allow: ["soc.raw.doj.>", "$JS.API.STREAM.INFO.SOC_RAW"]
}

// A sidecar next to rules/x.yml is rules/x.tests.yml.
func ExampleSidecarPath() {
	fmt.Println(rulebook.SidecarPath("detect/rules/dns/dns_query_wpad.yml"))
	// Output: detect/rules/dns/dns_query_wpad.tests.yml
}
