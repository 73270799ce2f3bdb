package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/normalize"
)

func TestFormatForAuto(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	reg := normalize.Builtin()
	tests := []struct {
		name, body, want, wantErr string
	}{
		{"suricata", `{"timestamp":"2017-01-30T16:12:29.951412+0100","event_type":"flow","src_ip":"172.17.0.2"}` + "\n", "suricata_eve", ""},
		{"zeek", "#separator \\x09\n#path\tconn\n#fields\tts\tuid\n#types\ttime\tstring\n1379288667.706265\tC1\n", "zeek", ""},
		{"syslog", "<38>May 30 10:15:30 fw01 sshd[1234]: Accepted publickey for ops from 203.0.113.5 port 40022 ssh2\n", "syslog", ""},
		{"garbage", "hello\nworld\n", "", "name the format with --format"},
		{"empty", "", "", "no line looks like"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := formatFor(reg, nil, write(tt.name, tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, normalize.ErrNoFormat) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Name != tt.want {
				t.Errorf("got %s, want %s", f.Name, tt.want)
			}
		})
	}
	fixed, _ := reg.Lookup("cef")
	if f, err := formatFor(reg, fixed, "/nonexistent"); err != nil || f != fixed {
		t.Errorf("explicit format: got %v, %v", f, err)
	}
}
