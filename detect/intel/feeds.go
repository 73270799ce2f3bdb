package intel

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Format is a feed file format.
type Format string

const (
	// FormatList is one indicator per line (domain, IP or CIDR); '#' and ';'
	// start comments. A Zeek Intel file ("#fields indicator indicator_type
	// ...") is recognised by its header and read as FormatZeekIntel, and a
	// line of the form "IP name..." as a hosts-file line.
	FormatList Format = "list"
	// FormatHosts is a hosts file: "0.0.0.0 name [name...]"; the names are
	// the indicators (the address is a sinkhole, not an indicator);
	// localhost-style names are ignored.
	FormatHosts Format = "hosts"
	// FormatCSV is comma-separated with a header naming the indicator column
	// (indicator, value, ioc, domain, hostname, host, ip, ip_address, cidr,
	// network); without a known header the first column is read and the
	// first row is data.
	FormatCSV Format = "csv"
	// FormatSTIX is a STIX 2.1 bundle: every "indicator" object with
	// pattern_type stix whose pattern compares domain-name:value,
	// ipv4-addr:value or ipv6-addr:value with '=' (or ISSUBSET for CIDRs);
	// revoked indicators and those past valid_until are skipped.
	FormatSTIX Format = "stix"
	// FormatZeekIntel is the Zeek Intel framework TSV: Intel::DOMAIN,
	// Intel::ADDR and Intel::SUBNET rows are read; other types are skipped.
	FormatZeekIntel Format = "zeek_intel"
)

// FormatForPath guesses a feed's format from its file name: .json is STIX,
// .csv CSV, .intel Zeek Intel, a name containing "hosts" a hosts file,
// anything else a plain list (which also recognises the others' lines).
func FormatForPath(path string) Format {
	base := strings.ToLower(filepath.Base(path))
	switch ext := filepath.Ext(base); {
	case ext == ".json":
		return FormatSTIX
	case ext == ".csv":
		return FormatCSV
	case ext == ".intel":
		return FormatZeekIntel
	case strings.Contains(base, "hosts"):
		return FormatHosts
	}
	return FormatList
}

// MaxFeedBytes bounds one feed file.
const MaxFeedBytes = 512 << 20

// LoadStats reports what a feed contributed.
type LoadStats struct {
	Feed        string
	Added       int    // indicators read (duplicates included)
	Skipped     int    // entries that are not usable indicators
	Unsupported int    // entries of kinds this package does not match (URLs, hashes, e-mail)
	FirstSkip   string // the first skipped entry and why, for the log
}

func (st *LoadStats) skip(where string, err error) {
	st.Skipped++
	if st.FirstSkip == "" {
		st.FirstSkip = fmt.Sprintf("%s: %v", where, err)
	}
}

func (st *LoadStats) add(b *Builder, where, value string) {
	if err := b.Add(st.Feed, value); err != nil {
		st.skip(where, err)
		return
	}
	st.Added++
}

// Load reads feed data in format into the builder under the feed's name.
// now decides which STIX indicators have expired. A usable feed with some
// bad entries loads them and counts the rest in LoadStats; an error means
// the feed as a whole could not be read (wrong format, too large).
func (b *Builder) Load(feed string, format Format, r io.Reader, now time.Time) (LoadStats, error) {
	st := LoadStats{Feed: feed}
	if feed == "" {
		return st, errors.New("load feed: the feed needs a name")
	}
	lr := &io.LimitedReader{R: r, N: MaxFeedBytes + 1}
	var err error
	switch format {
	case FormatList, FormatHosts, FormatZeekIntel:
		err = b.loadLines(&st, format, lr)
	case FormatCSV:
		err = b.loadCSV(&st, lr)
	case FormatSTIX:
		err = b.loadSTIX(&st, lr, now)
	default:
		return st, fmt.Errorf("load feed %s: unknown format %q (want list, hosts, csv, stix or zeek_intel)", feed, format)
	}
	if lr.N <= 0 {
		return st, fmt.Errorf("load feed %s: larger than %d bytes", feed, MaxFeedBytes)
	}
	if err != nil {
		return st, fmt.Errorf("load feed %s (%s): %w", feed, format, err)
	}
	return st, nil
}

var hostsIgnored = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "local": true, "broadcasthost": true,
	"ip6-localhost": true, "ip6-loopback": true, "ip6-localnet": true, "ip6-mcastprefix": true,
	"ip6-allnodes": true, "ip6-allrouters": true, "ip6-allhosts": true, "0.0.0.0": true,
}

func (b *Builder) loadLines(st *LoadStats, format Format, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	zeekInd, zeekType := -1, -1
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#fields") {
			for i, f := range strings.Split(line, "\t")[1:] {
				switch f {
				case "indicator":
					zeekInd = i
				case "indicator_type":
					zeekType = i
				}
			}
			if zeekInd < 0 || zeekType < 0 {
				return fmt.Errorf("line %d: #fields lacks indicator or indicator_type", n)
			}
			format = FormatZeekIntel
			continue
		}
		if line == "" || line[0] == '#' || line[0] == ';' || strings.HasPrefix(line, "//") {
			continue
		}
		where := fmt.Sprintf("line %d", n)
		if format == FormatZeekIntel {
			if zeekInd < 0 {
				return fmt.Errorf("line %d: Zeek Intel data before its #fields header", n)
			}
			cols := strings.Split(sc.Text(), "\t")
			if len(cols) <= zeekInd || len(cols) <= zeekType {
				st.skip(where, errors.New("fewer columns than #fields"))
				continue
			}
			switch cols[zeekType] {
			case "Intel::DOMAIN", "Intel::ADDR", "Intel::SUBNET":
				st.add(b, where, cols[zeekInd])
			default:
				st.Unsupported++
			}
			continue
		}
		if i := strings.IndexAny(line, "#;"); i > 0 {
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		if len(fields) > 1 || format == FormatHosts {
			// hosts line: "ADDR name [name...]"
			if _, err := netip.ParseAddr(fields[0]); err != nil || len(fields) < 2 {
				if format == FormatHosts {
					st.skip(where, errors.New(`want "address name [name...]"`))
					continue
				}
				st.skip(where, errors.New("more than one word"))
				continue
			}
			for _, name := range fields[1:] {
				if hostsIgnored[strings.ToLower(name)] {
					continue
				}
				st.add(b, where, name)
			}
			continue
		}
		if strings.Contains(line, "://") {
			st.Unsupported++ // URL indicators are not matched on DNS
			continue
		}
		st.add(b, where, line)
	}
	return sc.Err()
}

var csvColumns = map[string]bool{
	"indicator": true, "value": true, "ioc": true, "domain": true, "hostname": true, "host": true,
	"ip": true, "ip_address": true, "cidr": true, "network": true, "dst_ip": true, "domain_name": true,
}

func (b *Builder) loadCSV(st *LoadStats, r io.Reader) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.ReuseRecord = true
	col, first := 0, true
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if first {
			first = false
			header := false
			for i, h := range rec {
				if csvColumns[strings.ToLower(strings.TrimSpace(h))] {
					col, header = i, true
					break
				}
			}
			if header {
				continue
			}
		}
		where := fmt.Sprintf("row %d", n)
		if col >= len(rec) {
			st.skip(where, errors.New("no indicator column"))
			continue
		}
		v := strings.TrimSpace(rec[col])
		if strings.Contains(v, "://") {
			st.Unsupported++
			continue
		}
		st.add(b, where, v)
	}
}

type stixBundle struct {
	Type    string            `json:"type"`
	Objects []json.RawMessage `json:"objects"`
}

type stixIndicator struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Pattern     string `json:"pattern"`
	PatternType string `json:"pattern_type"`
	Revoked     bool   `json:"revoked"`
	ValidUntil  string `json:"valid_until"`
}

// stixComparison finds "<object>:value <op> '<literal>'" in a STIX pattern.
var stixComparison = regexp.MustCompile(`([a-z0-9-]+):value\s*(=|ISSUBSET)\s*'((?:[^'\\]|\\.)*)'`)

func (b *Builder) loadSTIX(st *LoadStats, r io.Reader, now time.Time) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var bundle stixBundle
	if err := json.Unmarshal(data, &bundle); err != nil {
		return fmt.Errorf("parse STIX bundle: %w", err)
	}
	if bundle.Type != "bundle" {
		// A single indicator object is accepted as a bundle of one.
		if bytes.Contains(data[:min(len(data), 256)], []byte(`"indicator"`)) {
			bundle.Objects = []json.RawMessage{data}
		} else {
			return fmt.Errorf("parse STIX bundle: type is %q, want bundle", bundle.Type)
		}
	}
	for i, raw := range bundle.Objects {
		var ind stixIndicator
		if err := json.Unmarshal(raw, &ind); err != nil {
			st.skip(fmt.Sprintf("object %d", i), err)
			continue
		}
		if ind.Type != "indicator" {
			continue
		}
		where := ind.ID
		if ind.PatternType != "" && ind.PatternType != "stix" {
			st.Unsupported++
			continue
		}
		if ind.Revoked {
			continue
		}
		if ind.ValidUntil != "" {
			if t, err := time.Parse(time.RFC3339Nano, ind.ValidUntil); err == nil && !now.IsZero() && t.Before(now) {
				continue
			}
		}
		found := false
		for _, m := range stixComparison.FindAllStringSubmatch(ind.Pattern, -1) {
			obj, op, lit := m[1], m[2], strings.ReplaceAll(strings.ReplaceAll(m[3], `\'`, `'`), `\\`, `\`)
			switch {
			case obj == "domain-name" && op == "=":
			case (obj == "ipv4-addr" || obj == "ipv6-addr") && (op == "=" || op == "ISSUBSET"):
			default:
				continue
			}
			found = true
			st.add(b, where, lit)
		}
		if !found {
			st.Unsupported++
		}
	}
	return nil
}
