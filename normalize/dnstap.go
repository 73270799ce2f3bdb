package normalize

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	"github.com/watchfloor/watchfloor/schemas"
)

// MaxDnstapFrame bounds one dnstap frame (before base64). DNS messages are
// at most 64 KiB; a frame holds a query and a response plus metadata.
const MaxDnstapFrame = 256 << 10

// Dnstap returns the "dnstap" format. dnstap is a binary Frame Streams
// protocol; the sensor ships it like every other source, as newline-delimited
// records, with this framing: one record is one Frame Streams data frame (a
// serialized dnstap.Dnstap protobuf, without the 4-byte length prefix and
// without control frames), encoded in standard base64 (RFC 4648 §4, with
// padding) on one line. DnstapLines converts a Frame Streams file or stream
// to that framing.
//
// Mapping notes:
//   - *_QUERY messages are activity Query, *_RESPONSE messages Response,
//     Traffic when the frame carries both the query and the response.
//   - src_endpoint is query_address/query_port (the initiator), dst_endpoint
//     response_address/response_port, as in dnstap's own definition.
//   - The event time is query_time for queries and response_time for
//     responses (as dnstap-read prints); rtt is their difference when both
//     are present.
//   - The DNS message (response for responses) is unpacked with
//     github.com/miekg/dns: question, id, rcode, answers (rdata text and TTL).
//     A message that does not unpack is kept: unmapped dnstap.message_error
//     holds the reason and the event has what the frame metadata gives.
//   - dnstap.identity is device.hostname; version, message type, the
//     message size in bytes and query_zone go to unmapped.
func Dnstap() Format {
	return Format{
		Name:        "dnstap",
		Description: "dnstap frames (one base64 protobuf frame per line) as OCSF DNS Activity",
		NewDecoder:  func(BatchInfo) Decoder { return &dnstapDecoder{} },
	}
}

type dnstapDecoder struct {
	frame []byte
	dt    dnstap.Dnstap
	msg   dns.Msg
}

func (d *dnstapDecoder) Directive([]byte) error { return nil }

func (d *dnstapDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	s := strings.TrimSpace(ev.Raw)
	if s == "" {
		return errors.New("parse dnstap: empty record")
	}
	if base64.StdEncoding.DecodedLen(len(s)) > MaxDnstapFrame {
		return fmt.Errorf("parse dnstap: frame of %d base64 bytes exceeds %d bytes", len(s), MaxDnstapFrame)
	}
	d.frame = d.frame[:cap(d.frame)]
	if need := base64.StdEncoding.DecodedLen(len(s)); len(d.frame) < need {
		d.frame = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(d.frame, []byte(s))
	if err != nil {
		return fmt.Errorf("parse dnstap: base64: %w", err)
	}
	d.dt.Reset()
	if err := proto.Unmarshal(d.frame[:n], &d.dt); err != nil {
		return fmt.Errorf("parse dnstap: protobuf: %w", err)
	}
	if d.dt.GetType() != dnstap.Dnstap_MESSAGE || d.dt.Message == nil {
		return fmt.Errorf("parse dnstap: frame type %s carries no message", d.dt.GetType())
	}
	m := d.dt.Message
	if m.Type == nil {
		return errors.New("parse dnstap: message has no type")
	}
	ev.Metadata.Product, ev.Metadata.Vendor, ev.Metadata.LogName = "dnstap", "dnstap", "dnstap"
	ev.DeviceHostname = string(d.dt.Identity)
	if v := d.dt.Version; len(v) > 0 {
		ev.AddUnmapped("dnstap.version", string(v))
	}
	ev.AddUnmapped("dnstap.message_type", m.GetType().String())

	isResp := int32(m.GetType())%2 == 0
	qt, hasQT := dnstapTime(m.QueryTimeSec, m.QueryTimeNsec)
	rt, hasRT := dnstapTime(m.ResponseTimeSec, m.ResponseTimeNsec)
	switch {
	case isResp && hasRT:
		ev.Time = rt
	case hasQT:
		ev.Time = qt
	case hasRT:
		ev.Time = rt
	default:
		return errors.New("parse dnstap: message has neither query_time nor response_time")
	}
	ev.Metadata.OriginalTime = strconv.FormatInt(ev.Time.UnixMilli(), 10)
	if hasQT && hasRT && !rt.Before(qt) {
		ev.DNS.RTT = rt.Sub(qt).Seconds()
	}
	ev.Src.IP = dnstapIP(m.QueryAddress)
	ev.Dst.IP = dnstapIP(m.ResponseAddress)
	ev.Src.Port, ev.Dst.Port = uint16(m.GetQueryPort()), uint16(m.GetResponsePort())
	switch m.GetSocketProtocol() {
	case dnstap.SocketProtocol_UDP:
		ev.Protocol = "udp"
	case dnstap.SocketProtocol_TCP:
		ev.Protocol = "tcp"
	case dnstap.SocketProtocol_DOT:
		ev.Protocol = "dot"
	case dnstap.SocketProtocol_DOH:
		ev.Protocol = "doh"
	}
	if z := m.QueryZone; len(z) > 0 {
		if name, _, err := dns.UnpackDomainName(z, 0); err == nil {
			ev.AddUnmapped("dnstap.query_zone", trimDot(name))
		}
	}

	wire := m.QueryMessage
	if isResp && len(m.ResponseMessage) > 0 {
		wire = m.ResponseMessage
	}
	activity := dnsActivityQuery
	if isResp {
		activity = dnsActivityResponse
	}
	if len(m.QueryMessage) > 0 && len(m.ResponseMessage) > 0 {
		activity = dnsActivityTraffic
	}
	ev.AddUnmapped("dnstap.message_size", strconv.Itoa(len(wire)))
	rcode := int32(-1)
	if len(wire) > 0 {
		d.msg = dns.Msg{}
		if err := d.msg.Unpack(wire); err != nil {
			ev.AddUnmapped("dnstap.message_error", err.Error())
		} else {
			if len(d.msg.Question) > 0 {
				q := d.msg.Question[0]
				ev.DNS.QueryHostname = trimDot(q.Name)
				ev.DNS.QueryType = dnsTypeName(q.Qtype)
				ev.DNS.QueryClass = dnsClassName(q.Qclass)
			}
			ev.DNS.TransactionID = uint32(d.msg.Id)
			if d.msg.Response {
				rcode = int32(d.msg.Rcode)
				for _, rr := range d.msg.Answer {
					ev.DNS.Answers = append(ev.DNS.Answers, rdataText(rr))
					ev.DNS.TTLs = append(ev.DNS.TTLs, rr.Header().Ttl)
				}
			}
		}
	}
	setDNSActivity(ev, activity, rcode)
	if rcode > 0 {
		ev.StatusID = dnsStatusFailure
	}
	finishDNS(ev)
	return nil
}

// rdataText renders an answer's rdata as zone-file text (what Zeek and
// the other formats log), with short paths for the common types.
func rdataText(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.A:
		if a, ok := netip.AddrFromSlice(v.A); ok {
			return a.Unmap().String()
		}
	case *dns.AAAA:
		if a, ok := netip.AddrFromSlice(v.AAAA); ok {
			return a.String()
		}
	case *dns.CNAME:
		return v.Target
	case *dns.PTR:
		return v.Ptr
	case *dns.NS:
		return v.Ns
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

func dnsTypeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func dnsClassName(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

func dnstapTime(sec *uint64, nsec *uint32) (time.Time, bool) {
	if sec == nil || *sec > maxEpochSeconds {
		return time.Time{}, false
	}
	var ns int64
	if nsec != nil && *nsec < 1e9 {
		ns = int64(*nsec)
	}
	return time.Unix(int64(*sec), ns).UTC().Truncate(time.Millisecond), true
}

func dnstapIP(b []byte) string {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return ""
	}
	return a.Unmap().String()
}

// DnstapLines reads a Frame Streams dnstap stream (a file written by a DNS
// server or `dnstap -w`, unidirectional) from r and writes the record
// framing of the "dnstap" format to w: one base64 frame per line. It
// returns the number of frames written. Frames over MaxDnstapFrame are an
// error, not skipped: nothing is dropped silently.
func DnstapLines(r io.Reader, w io.Writer) (int, error) {
	fr, err := dnstap.NewReader(r, nil)
	if err != nil {
		return 0, fmt.Errorf("read dnstap frame stream: %w", err)
	}
	bw := bufio.NewWriter(w)
	buf := make([]byte, MaxDnstapFrame)
	enc := make([]byte, base64.StdEncoding.EncodedLen(MaxDnstapFrame)+1)
	n := 0
	for {
		size, err := fr.ReadFrame(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("read dnstap frame %d: %w", n+1, err)
		}
		l := base64.StdEncoding.EncodedLen(size)
		base64.StdEncoding.Encode(enc, buf[:size])
		enc[l] = '\n'
		if _, err := bw.Write(enc[:l+1]); err != nil {
			return n, fmt.Errorf("write dnstap line %d: %w", n+1, err)
		}
		n++
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("write dnstap lines: %w", err)
	}
	return n, nil
}
