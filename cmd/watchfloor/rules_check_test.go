package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	good := "title: ok\nid: r-ok\nlevel: low\nlogsource: {category: dns}\ndetection:\n  sel: {query|expand: '%Zones%'}\n  condition: sel\n"
	bad := "title: bad\nid: r-bad\nlevel: low\nlogsource: {category: dns}\ndetection:\n  sel: {query|nosuchmod: x}\n  condition: sel\n"
	if err := os.MkdirAll(filepath.Join(dir, "rules", "dns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules", "dns", "good.yml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	ph := filepath.Join(t.TempDir(), "ph.yml")
	if err := os.WriteFile(ph, []byte("Zones: ['*.example.com']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		bad     bool
		wantErr string
		wantOut []string
	}{
		{"placeholder missing", []string{"rules", "check", dir}, false, "1 of 1 rules do not compile", []string{"good.yml: rule r-ok", "placeholder %Zones% is not defined"}},
		{"placeholders given", []string{"rules", "check", dir, "--placeholders", ph}, false, "", []string{"rules/dns", "total"}},
		{"flags first", []string{"rules", "check", "--placeholders", ph, dir}, false, "", []string{"total"}},
		{"bad rule", []string{"rules", "check", "--placeholders", ph, dir}, true, "1 of 2 rules do not compile", []string{"bad.yml: rule r-bad", `unknown modifier "nosuchmod"`}},
		{"no dir", []string{"rules", "check"}, false, "want exactly one DIR", nil},
		{"unknown subcommand", []string{"rules", "nosuch"}, false, `unknown rules command "nosuch"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bad {
				if err := os.WriteFile(filepath.Join(dir, "rules", "dns", "bad.yml"), []byte(bad), 0o644); err != nil {
					t.Fatal(err)
				}
				defer os.Remove(filepath.Join(dir, "rules", "dns", "bad.yml"))
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, func(string) string { return "" }, &out, &errb)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run() error = %v\n%s", err, out.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run() error = %v, want %q", err, tt.wantErr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
