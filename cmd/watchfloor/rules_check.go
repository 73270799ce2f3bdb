package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/watchfloor/watchfloor/detect"
)

const rulesCheckUsage = `Usage:
  watchfloor rules check DIR [--placeholders FILE] [--quiet]

check parses and compiles every Sigma rule under DIR (detection rules,
correlations and filters), prints per-folder counts and one line per rule
that does not compile, naming the file, the rule and the reason. It exits 1
when any rule fails.

--placeholders FILE is a YAML map from placeholder name to values, for the
rules that use |expand (e.g. Administrators: ['CORP\Domain Admins']).
`

// maxPlaceholdersFile bounds the placeholders file.
const maxPlaceholdersFile = 4 << 20

func cmdRulesCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rulesCheckUsage) }
	placeholders := fs.String("placeholders", "", "YAML file of placeholder values for |expand")
	quiet := fs.Bool("quiet", false, "print only the counts, not every problem")
	// Accept the directory before or after the flags.
	var dirs []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{err}
		}
		args = fs.Args()
		if len(args) > 0 {
			dirs = append(dirs, args[0])
			args = args[1:]
		}
	}
	if len(dirs) != 1 {
		fmt.Fprint(stderr, rulesCheckUsage)
		return usageError{fmt.Errorf("rules check: want exactly one DIR, got %d", len(dirs))}
	}
	cfg := detect.DefaultConfig()
	if *placeholders != "" {
		ph, err := readPlaceholders(*placeholders)
		if err != nil {
			return err
		}
		cfg.Placeholders = ph
	}
	rep, err := detect.CheckDir(dirs[0], cfg)
	if err != nil {
		return fmt.Errorf("rules check %s: %w", dirs[0], err)
	}
	if *quiet {
		rep.Problems = nil
	}
	if err := rep.Write(stdout); err != nil {
		return err
	}
	if t := rep.Total(); t.Failed > 0 {
		return fmt.Errorf("rules check %s: %d of %d rules do not compile", dirs[0], t.Failed, t.Rules)
	}
	return nil
}

func readPlaceholders(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read placeholders: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPlaceholdersFile+1))
	if err != nil {
		return nil, fmt.Errorf("read placeholders %s: %w", path, err)
	}
	if len(data) > maxPlaceholdersFile {
		return nil, fmt.Errorf("read placeholders %s: larger than %d bytes", path, maxPlaceholdersFile)
	}
	ph, err := detect.ParsePlaceholders(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ph, nil
}
