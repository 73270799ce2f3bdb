package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/watchfloor/watchfloor/ingest"
)

const natsUserUsage = `Usage: watchfloor nats-user add [--role sensor|pipeline|engineer] [--users FILE] [--nats-conf FILE] NAME

Creates (or replaces) a NATS user with a fresh random password, kept in
--users as a bcrypt hash, and rewrites --nats-conf, the authorization block
for an external nats-server ('include' it from the server's config). The
password is printed once on stdout and stored nowhere.

Roles:
  sensor    NAME is the agency; user sensor-NAME may publish to soc.raw.NAME.>
            only and receive replies on _INBOX_sensor_NAME.> only
            (wfsensor's default inbox for --agency NAME)
  pipeline  the watchfloor run service: all subjects
  engineer  a detection engineer: the soc_rules KV bucket only (inbox
            prefix _INBOX_rules_NAME)

The embedded server of 'watchfloor run' loads the same file with
--nats.users-file.

Example:
  watchfloor nats-user add --users /etc/watchfloor/users.json doj
  wfsensor tail --user sensor-doj --agency doj ...
      (password in WFSENSOR_PASSWORD)
`

func cmdNATSUser(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, natsUserUsage)
			return nil
		}
		fmt.Fprint(stderr, natsUserUsage)
		return usageError{errors.New("nats-user needs a subcommand: add")}
	}
	fs := flag.NewFlagSet("nats-user add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", ingest.RoleSensor, "sensor, pipeline or engineer")
	users := fs.String("users", "watchfloor-users.json", "users file (bcrypt hashes), created if missing")
	conf := fs.String("nats-conf", "", "nats-server authorization block to write (default: the users file with .conf)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, natsUserUsage)
			return nil
		}
		return usageError{fmt.Errorf("%w (see --help)", err)}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("nats-user add needs exactly one NAME (the agency for --role sensor)")}
	}
	if *conf == "" {
		*conf = *users + ".conf"
	}
	u, err := ingest.LoadUsers(*users)
	if err != nil {
		return err
	}
	x, password, err := u.Add(*role, fs.Arg(0))
	if err != nil {
		return usageError{fmt.Errorf("nats-user add: %w", err)}
	}
	if err := u.SaveUsers(*users); err != nil {
		return err
	}
	if err := os.WriteFile(*conf, []byte(u.NATSConfig()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", *conf, err)
	}
	fmt.Fprintf(stdout, "user: %s\npassword: %s\nrole: %s\n", x.Name, password, x.Role)
	if x.Role == ingest.RoleSensor {
		fmt.Fprintf(stdout, "publishes to: soc.raw.%s.>\nwfsensor flags: --user %s --inbox-prefix %s (password in WFSENSOR_PASSWORD)\n",
			x.Agency, x.Name, ingest.SensorInboxPrefix(x.Agency))
	}
	fmt.Fprintf(stdout, "users file: %s\nnats-server authorization block: %s\n", *users, *conf)
	return nil
}
