package rulebook

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/watchfloor/watchfloor/ingest"
)

// Role is what a NATS user of Watchfloor may do.
type Role string

const (
	// RoleEngineer deploys rules: it may write the soc_rules bucket and
	// read the detections; it cannot publish telemetry.
	RoleEngineer Role = "engineer"
	// RolePipeline runs `watchfloor run`: it consumes SOC_RAW, publishes
	// detections and dead letters, and reads (never writes) soc_rules.
	RolePipeline Role = "pipeline"
	// RoleSensor ships one agency's telemetry to soc.raw.<agency>.> only.
	RoleSensor Role = "sensor"
)

// kvStream is the stream behind the bucket.
const kvStream = "KV_" + Bucket

// rulesWrite lists every subject that changes the bucket: puts and
// deletes ($KV.soc_rules.<key>), and the stream API calls that would
// create, reconfigure, purge, delete or edit the stream under it.
var rulesWrite = []string{
	"$KV." + Bucket + ".>",
	"$JS.API.STREAM.CREATE." + kvStream,
	"$JS.API.STREAM.UPDATE." + kvStream,
	"$JS.API.STREAM.DELETE." + kvStream,
	"$JS.API.STREAM.PURGE." + kvStream,
	"$JS.API.STREAM.MSG.DELETE." + kvStream,
	"$JS.API.STREAM.RESTORE." + kvStream,
}

// rulesRead is what reading and watching the bucket needs.
var rulesRead = []string{
	"$JS.API.INFO",
	"$JS.API.STREAM.INFO." + kvStream,
	"$JS.API.STREAM.MSG.GET." + kvStream,
	"$JS.API.DIRECT.GET." + kvStream,
	"$JS.API.DIRECT.GET." + kvStream + ".>",
	"$JS.API.CONSUMER.CREATE." + kvStream,
	"$JS.API.CONSUMER.CREATE." + kvStream + ".>",
	"$JS.API.CONSUMER.DELETE." + kvStream + ".>",
	"$JS.API.CONSUMER.INFO." + kvStream + ".>",
	"$JS.FC." + kvStream + ".>",
}

var agencyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Permissions returns the NATS permissions of a role. agency is required
// for RoleSensor (the only subjects it may publish are its own) and
// ignored otherwise. Deny lists win over allow lists in NATS, so the
// pipeline's broad JetStream API rights never reach the rules bucket.
func Permissions(role Role, agency string) (*server.Permissions, error) {
	inbox := &server.SubjectPermission{Allow: []string{"_INBOX.>"}}
	switch role {
	case RoleEngineer:
		pub := append(append([]string{}, rulesWrite...), rulesRead...)
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", "soc.detections.>"}},
		}, nil
	case RolePipeline:
		return &server.Permissions{
			Publish: &server.SubjectPermission{
				Allow: []string{"$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "soc.detections.>", "soc.dlq.>"},
				Deny:  append(append([]string{}, rulesWrite...), "soc.raw.>"),
			},
			Subscribe: inbox,
		}, nil
	case RoleSensor:
		if !agencyPattern.MatchString(agency) {
			return nil, fmt.Errorf("sensor permissions: agency %q must match %s", agency, agencyPattern)
		}
		return &server.Permissions{
			Publish: &server.SubjectPermission{
				Allow: []string{"soc.raw." + agency + ".>", "$JS.API.STREAM.INFO.SOC_RAW"},
				Deny:  append([]string{}, rulesWrite...),
			},
			// Its own replies only: _INBOX.> would show it the pipeline's
			// pull deliveries, every agency's raw data.
			Subscribe: &server.SubjectPermission{Allow: []string{ingest.SensorInboxPrefix(agency) + ".>"}},
		}, nil
	}
	return nil, fmt.Errorf("unknown role %q: want engineer, pipeline or sensor", role)
}

// User is one NATS user of the generated authorization block.
type User struct {
	Name     string
	Password string // plain or a bcrypt hash ($2a$...); never logged
	Role     Role
	Agency   string // RoleSensor only
}

// AuthorizationConfig renders a nats-server configuration block
// (`authorization { users = [...] }`) giving each user its role's
// permissions. Include it in the server's config file; for operator/JWT
// deployments the same subject lists (Permissions) go into the user JWTs.
func AuthorizationConfig(users []User) (string, error) {
	if len(users) == 0 {
		return "", errors.New("authorization config: no users")
	}
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	seen := map[string]bool{}
	for i, u := range users {
		switch {
		case u.Name == "" || strings.ContainsAny(u.Name, "\"\\\n"):
			return "", fmt.Errorf("authorization config: users[%d].name %q is empty or has quotes, backslashes or newlines", i, u.Name)
		case seen[u.Name]:
			return "", fmt.Errorf("authorization config: users[%d].name %q is given twice", i, u.Name)
		case u.Password == "" || strings.ContainsAny(u.Password, "\"\\\n"):
			return "", fmt.Errorf("authorization config: users[%d] (%s): password is empty or has quotes, backslashes or newlines", i, u.Name)
		}
		seen[u.Name] = true
		p, err := Permissions(u.Role, u.Agency)
		if err != nil {
			return "", fmt.Errorf("authorization config: users[%d] (%s): %w", i, u.Name, err)
		}
		fmt.Fprintf(&b, "    { # role %s%s\n      user: %s\n      password: %s\n      permissions: {\n",
			u.Role, agencyNote(u), strconv.Quote(u.Name), strconv.Quote(u.Password))
		writePerm(&b, "publish", p.Publish)
		writePerm(&b, "subscribe", p.Subscribe)
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func agencyNote(u User) string {
	if u.Role == RoleSensor {
		return ", agency " + u.Agency
	}
	return ""
}

func writePerm(b *strings.Builder, name string, p *server.SubjectPermission) {
	if p == nil {
		return
	}
	fmt.Fprintf(b, "        %s: {\n", name)
	list := func(key string, subs []string) {
		if len(subs) == 0 {
			return
		}
		q := make([]string, len(subs))
		for i, s := range subs {
			q[i] = strconv.Quote(s)
		}
		fmt.Fprintf(b, "          %s: [%s]\n", key, strings.Join(q, ", "))
	}
	list("allow", p.Allow)
	list("deny", p.Deny)
	b.WriteString("        }\n")
}
