package ingest

import (
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// Roles of NATS users.
const (
	RoleSensor   = "sensor"   // publishes soc.raw.<agency>.> only
	RolePipeline = "pipeline" // the watchfloor run service: everything
	RoleEngineer = "engineer" // detection engineers: the soc_rules KV bucket only
)

// RulesBucket is the KV bucket of deployed rules.
const RulesBucket = "soc_rules"

// SensorInboxPrefix is the reply-subject prefix a sensor of agency must use
// (nats.CustomInboxPrefix): it may subscribe there only, so it never sees
// replies meant for others (the pipeline's pull deliveries carry raw data).
func SensorInboxPrefix(agency string) string { return "_INBOX_sensor_" + agency }

// EngineerInboxPrefix is the reply-subject prefix of a detection engineer.
func EngineerInboxPrefix(name string) string { return "_INBOX_rules_" + name }

// User is one NATS user of the shared service. Only the bcrypt hash of the
// password is kept.
type User struct {
	Name         string `json:"name"`
	Role         string `json:"role"`
	Agency       string `json:"agency,omitempty"` // sensors only
	PasswordHash string `json:"password_bcrypt"`
}

// Users is the users file: the source of the embedded server's users and
// of the authorization block for an external nats-server.
type Users struct {
	Users []User `json:"users"`
}

// LoadUsers reads a users file written by SaveUsers. A missing file is an
// empty set.
func LoadUsers(path string) (*Users, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Users{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load users %s: %w", path, err)
	}
	var u Users
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("load users %s: %w", path, err)
	}
	for i, x := range u.Users {
		if err := x.validate(); err != nil {
			return nil, fmt.Errorf("load users %s: user %d: %w", path, i, err)
		}
	}
	return &u, nil
}

// SaveUsers writes the file with mode 0600 (it holds password hashes).
func (u *Users) SaveUsers(path string) error {
	b, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save users %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save users %s: %w", path, err)
	}
	return nil
}

func (x User) validate() error {
	if x.Name == "" || len(x.Name) > 128 || strings.ContainsAny(x.Name, " \t\r\n\"'\\{}[]") {
		return fmt.Errorf("user name %q must be 1 to 128 characters without spaces, quotes or brackets", x.Name)
	}
	switch x.Role {
	case RoleSensor:
		if err := ValidateAgency(x.Agency); err != nil {
			return fmt.Errorf("sensor %s: %w", x.Name, err)
		}
	case RolePipeline, RoleEngineer:
	default:
		return fmt.Errorf("user %s: role %q must be sensor, pipeline or engineer", x.Name, x.Role)
	}
	if !strings.HasPrefix(x.PasswordHash, "$2") {
		return fmt.Errorf("user %s: password_bcrypt is not a bcrypt hash", x.Name)
	}
	return nil
}

// Add creates a user with a fresh random password, replacing a user of the
// same name, and returns the password: it is shown once and never stored.
// For RoleSensor, name is the agency and the user is "sensor-<agency>".
func (u *Users) Add(role, name string) (User, string, error) {
	x := User{Name: name, Role: role}
	if role == RoleSensor {
		x.Agency, x.Name = name, "sensor-"+name
	}
	var r [24]byte
	if _, err := crand.Read(r[:]); err != nil {
		return User{}, "", err
	}
	password := base64.RawURLEncoding.EncodeToString(r[:])
	h, err := bcrypt.GenerateFromPassword([]byte(password), 11)
	if err != nil {
		return User{}, "", err
	}
	x.PasswordHash = string(h)
	if err := x.validate(); err != nil {
		return User{}, "", err
	}
	u.Users = slices.DeleteFunc(u.Users, func(o User) bool { return o.Name == x.Name })
	u.Users = append(u.Users, x)
	return x, password, nil
}

// Permissions are what the role may do. Everything not allowed is denied.
func (x User) Permissions() *server.Permissions {
	switch x.Role {
	case RoleSensor:
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{RawSubjectPrefix + x.Agency + ".>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{SensorInboxPrefix(x.Agency) + ".>"}},
		}
	case RoleEngineer:
		kv := "KV_" + RulesBucket
		return &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				"$KV." + RulesBucket + ".>",
				"$JS.API.INFO",
				"$JS.API.STREAM.INFO." + kv,
				"$JS.API.STREAM.MSG.GET." + kv,
				"$JS.API.DIRECT.GET." + kv + ".>",
				"$JS.API.CONSUMER.CREATE." + kv + ".>",
				"$JS.API.CONSUMER.INFO." + kv + ".>",
				"$JS.API.CONSUMER.DELETE." + kv + ".>",
				"$JS.API.CONSUMER.MSG.NEXT." + kv + ".>",
				"$JS.FC.>",
				"$JS.ACK." + kv + ".>",
			}},
			Subscribe: &server.SubjectPermission{Allow: []string{EngineerInboxPrefix(x.Name) + ".>"}},
		}
	default: // pipeline
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}},
		}
	}
}

// ServerUsers are the users for server.Options.Users.
func (u *Users) ServerUsers() []*server.User {
	out := make([]*server.User, 0, len(u.Users))
	for _, x := range u.Users {
		out = append(out, &server.User{Username: x.Name, Password: x.PasswordHash, Permissions: x.Permissions()})
	}
	return out
}

// NATSConfig renders the authorization block for a nats-server config file
// (nats-server accepts bcrypt hashes as passwords).
func (u *Users) NATSConfig() string {
	var b strings.Builder
	b.WriteString("# Watchfloor users: generated by 'watchfloor nats-user add'; do not edit by hand.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, x := range u.Users {
		p := x.Permissions()
		fmt.Fprintf(&b, "    { user: %s, password: %s, permissions: { publish: { allow: %s }, subscribe: { allow: %s } } }\n",
			strconv.Quote(x.Name), strconv.Quote(x.PasswordHash), quoteList(p.Publish.Allow), quoteList(p.Subscribe.Allow))
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
