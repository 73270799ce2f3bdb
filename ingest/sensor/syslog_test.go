package sensor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

type frame struct {
	msg  string
	size int
}

func readFrames(r io.Reader, maxMsg int) ([]frame, error) {
	fr := NewFrameReader(r, maxMsg)
	var out []frame
	for {
		m, size, err := fr.Next()
		if len(m) > 0 {
			out = append(out, frame{string(m), size})
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func octet(m string) string { return strconv.Itoa(len(m)) + " " + m }

func TestFrameReader(t *testing.T) {
	long := strings.Repeat("x", 600)
	tests := []struct {
		name string
		give string
		want []frame
	}{
		{name: "newline", give: "<13>a b\n<14>c\n", want: []frame{{"<13>a b", 7}, {"<14>c", 5}}},
		{name: "newline crlf and blanks", give: "\r\n<13>a\r\n\n\n<14>b", want: []frame{{"<13>a", 5}, {"<14>b", 5}}},
		{name: "octet", give: octet("<13>a b") + octet("<14>c"), want: []frame{{"<13>a b", 7}, {"<14>c", 5}}},
		{name: "octet with inner newline", give: octet("<13>line1\nline2"), want: []frame{{"<13>line1#012line2", 18}}},
		{name: "octet trailing newline", give: octet("<13>a\n") + "\n" + octet("<14>b"), want: []frame{{"<13>a", 5}, {"<14>b", 5}}},
		{name: "mixed", give: octet("<13>a") + "<14>b\n" + octet("<15>c"), want: []frame{{"<13>a", 5}, {"<14>b", 5}, {"<15>c", 5}}},
		{name: "digits not a count", give: "2024-01-01 msg\n", want: []frame{{"2024-01-01 msg", 14}}},
		{name: "digits only line", give: "12345\nx\n", want: []frame{{"12345", 5}, {"x", 1}}},
		{name: "zero is not a count", give: "0 x\n", want: []frame{{"0 x", 3}}},
		{name: "ten digits not a count", give: "1234567890 x\n", want: []frame{{"1234567890 x", 12}}},
		{name: "octet cut by eof", give: "10 <13>ab", want: []frame{{"<13>ab", 6}}},
		{name: "octet oversize", give: octet(long) + octet("<14>next"), want: []frame{{long[:500], 600}, {"<14>next", 8}}},
		{name: "newline oversize", give: long + "\n<14>next\n", want: []frame{{long[:500], 600}, {"<14>next", 8}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.give), iotest.OneByteReader(strings.NewReader(tt.give))} {
				got, err := readFrames(r, 500)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("frames = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func FuzzOctetFraming(f *testing.F) {
	f.Add([]byte(octet("<13>a b")+octet("<14>c")), 480)
	f.Add([]byte(octet("<13>x\ny")+"<14>nl\n"+"12 short"), 480)
	f.Add([]byte("999999999 "), 480)
	f.Add([]byte("1234567890 x\n\r\n\x00"), 500)
	f.Fuzz(func(t *testing.T, data []byte, maxMsg int) {
		maxMsg = 480 + abs(maxMsg)%2048
		got, err := readFrames(bytes.NewReader(data), maxMsg)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, fm := range got {
			if strings.IndexByte(fm.msg, '\n') >= 0 {
				t.Fatalf("message %q contains a newline", fm.msg)
			}
			raw := strings.ReplaceAll(fm.msg, "#012", "\n")
			if len(raw) > maxMsg {
				t.Fatalf("message of %d bytes over the %d limit", len(raw), maxMsg)
			}
			if fm.size < len(fm.msg) {
				t.Fatalf("size %d below message length %d", fm.size, len(fm.msg))
			}
			total += len(raw)
		}
		if total > len(data) {
			t.Fatalf("%d message bytes out of %d input bytes", total, len(data))
		}
		// Octet-counted frames of the messages read back the same.
		var enc bytes.Buffer
		var want []string
		for _, fm := range got {
			raw := strings.ReplaceAll(fm.msg, "#012", "\n")
			enc.WriteString(octet(raw))
			want = append(want, fm.msg)
		}
		again, err := readFrames(&enc, maxMsg)
		if err != nil {
			t.Fatal(err)
		}
		var gotMsgs []string
		for _, fm := range again {
			gotMsgs = append(gotMsgs, fm.msg)
		}
		if !slices.Equal(gotMsgs, want) {
			t.Fatalf("re-framed messages = %q, want %q", gotMsgs, want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}

func TestSyslog(t *testing.T) {
	_, js := newJS(t)
	cfg := testConfig()
	cfg.Linger = 50 * time.Millisecond
	p := newPub(t, js, cfg, Source{Format: lookup(t, "syslog")})
	sc := SyslogConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", MaxTCPMessage: 1024, MaxConns: 4}
	sl, err := NewSyslog(sc, p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := sl.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() { serveErr = sl.Serve(ctx) })

	var want []string
	udp, err := net.Dial("udp", sl.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := fmt.Sprintf("<13>udp message %d", i)
		if _, err := udp.Write([]byte(m + "\n")); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	if _, err := udp.Write([]byte("<13>udp multi\nline")); err != nil {
		t.Fatal(err)
	}
	want = append(want, "<13>udp multi#012line")
	udp.Close()

	send := func(payload string) {
		t.Helper()
		c, err := net.Dial("tcp", sl.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, payload); err != nil {
			t.Fatal(err)
		}
	}
	var nl, oc strings.Builder
	for i := range 5 {
		m := fmt.Sprintf("<14>tcp newline %d", i)
		nl.WriteString(m + "\n")
		want = append(want, m)
	}
	send(nl.String())
	for i := range 5 {
		m := fmt.Sprintf("<15>tcp octet %d\nsecond line", i)
		oc.WriteString(octet(m))
		want = append(want, strings.ReplaceAll(m, "\n", "#012"))
	}
	send(oc.String())

	deadline := time.Now().Add(5 * time.Second)
	var got []string
	for {
		got = allRecords(t, readStream(t, js), true)
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	closePub(t, p)
	if serveErr != nil {
		t.Errorf("Serve = %v", serveErr)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("records:\n%q\nwant\n%q", got, want)
	}
	for _, m := range readStream(t, js) {
		if m.Subject != "soc.raw.agency-a.syslog" {
			t.Errorf("subject = %s", m.Subject)
		}
	}
}

func TestSyslogConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    func(*SyslogConfig)
		wantErr string
	}{
		{name: "default", give: func(*SyslogConfig) {}},
		{name: "no listener", give: func(c *SyslogConfig) { c.UDPAddr, c.TCPAddr = "", "" }, wantErr: "syslog.udp"},
		{name: "max message", give: func(c *SyslogConfig) { c.MaxTCPMessage = 1 << 30 }, wantErr: "syslog.max_message"},
		{name: "max conns", give: func(c *SyslogConfig) { c.MaxConns = 0 }, wantErr: "syslog.max_conns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultSyslogConfig()
			tt.give(&c)
			err := c.Validate()
			if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want error naming %q", err, tt.wantErr)
			}
		})
	}
}
