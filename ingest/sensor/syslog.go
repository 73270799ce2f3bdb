package sensor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/watchfloor/watchfloor/ingest"
)

// MaxUDPMessage is the largest syslog datagram kept whole.
const MaxUDPMessage = 64 << 10

// SyslogConfig configures the syslog listener.
type SyslogConfig struct {
	UDPAddr       string // syslog.udp (--udp): host:port, empty disables UDP
	TCPAddr       string // syslog.tcp (--tcp): host:port, empty disables TCP
	MaxTCPMessage int    // syslog.max_message (--max-message): a longer TCP message is truncated and listed in Wf-Oversize
	MaxConns      int    // syslog.max_conns (--max-conns): concurrent TCP connections; more wait in the backlog
}

// DefaultSyslogConfig listens on port 5514 (514 needs privileges).
func DefaultSyslogConfig() SyslogConfig {
	return SyslogConfig{UDPAddr: ":5514", TCPAddr: ":5514", MaxTCPMessage: 64 << 10, MaxConns: 256}
}

// Validate reports the first bad setting, naming its key.
func (c SyslogConfig) Validate() error {
	switch {
	case c.UDPAddr == "" && c.TCPAddr == "":
		return errors.New("syslog.udp and syslog.tcp are both empty: enable at least one")
	case c.MaxTCPMessage < 480 || c.MaxTCPMessage > ingest.MaxRecordBytes:
		return fmt.Errorf("syslog.max_message must be between 480 and %d, got %d", ingest.MaxRecordBytes, c.MaxTCPMessage)
	case c.MaxConns < 1 || c.MaxConns > 65536:
		return fmt.Errorf("syslog.max_conns must be between 1 and 65536, got %d", c.MaxConns)
	}
	return nil
}

// Syslog receives syslog messages over UDP (one message per datagram) and
// TCP (RFC 6587 octet counting or newline framing, detected per frame) and
// adds each message as one record to a Publisher. Newlines inside a message
// become "#012", rsyslog's escape, so a record stays one line.
type Syslog struct {
	cfg SyslogConfig
	pub *Publisher
	log *slog.Logger

	udp net.PacketConn
	tcp net.Listener

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// NewSyslog returns a listener adding to pub; call Listen, then Serve.
func NewSyslog(cfg SyslogConfig, pub *Publisher, log *slog.Logger) (*Syslog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syslog{cfg: cfg, pub: pub, log: log, conns: map[net.Conn]struct{}{}}, nil
}

// Listen binds the configured addresses.
func (s *Syslog) Listen(ctx context.Context) error {
	var lc net.ListenConfig
	if s.cfg.UDPAddr != "" {
		pc, err := lc.ListenPacket(ctx, "udp", s.cfg.UDPAddr)
		if err != nil {
			return fmt.Errorf("syslog.udp: %w", err)
		}
		s.udp = pc
	}
	if s.cfg.TCPAddr != "" {
		l, err := lc.Listen(ctx, "tcp", s.cfg.TCPAddr)
		if err != nil {
			if s.udp != nil {
				_ = s.udp.Close()
			}
			return fmt.Errorf("syslog.tcp: %w", err)
		}
		s.tcp = l
	}
	return nil
}

// UDPAddr is the bound UDP address, or nil.
func (s *Syslog) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// TCPAddr is the bound TCP address, or nil.
func (s *Syslog) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Serve receives until ctx ends, then closes the sockets and returns once
// every connection handler has returned. Messages already received are in
// the Publisher; the caller closes it to flush them.
func (s *Syslog) Serve(ctx context.Context) error {
	if s.udp == nil && s.tcp == nil {
		return errors.New("syslog: Serve before Listen")
	}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if s.udp != nil {
		wg.Go(func() { errc <- s.serveUDP(ctx) })
	}
	if s.tcp != nil {
		wg.Go(func() { errc <- s.serveTCP(ctx, &wg) })
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.closeAll()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Syslog) closeAll() {
	if s.udp != nil {
		_ = s.udp.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
}

func (s *Syslog) serveUDP(ctx context.Context) error {
	buf := make([]byte, MaxUDPMessage+1)
	var scratch []byte
	for {
		n, _, err := s.udp.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("syslog udp: %w", err)
		}
		size := n
		if n > MaxUDPMessage {
			n = MaxUDPMessage // cut by the buffer: the true size is unknown, the message is flagged
		}
		msg := trimFrame(buf[:n])
		var nl int
		scratch, nl = escapeNewlines(scratch[:0], msg)
		if size > MaxUDPMessage {
			size = len(scratch) + 1
		} else {
			size = len(msg) + 3*nl
		}
		if err := s.pub.Add(ctx, Line{Data: scratch, Size: size}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("syslog udp: %w", err)
		}
	}
}

func (s *Syslog) serveTCP(ctx context.Context, wg *sync.WaitGroup) error {
	slots := make(chan struct{}, s.cfg.MaxConns)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := s.tcp.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("syslog tcp: accept: %w", err)
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
				<-slots
			}()
			s.serveConn(ctx, c)
		})
	}
}

func (s *Syslog) serveConn(ctx context.Context, c net.Conn) {
	fr := NewFrameReader(c, s.cfg.MaxTCPMessage)
	for {
		msg, size, err := fr.Next()
		if len(msg) > 0 {
			if aerr := s.pub.Add(ctx, Line{Data: msg, Size: size}); aerr != nil {
				if ctx.Err() == nil {
					s.log.Error("syslog tcp: add message", "err", aerr)
				}
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				s.log.Debug("syslog tcp connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
	}
}

// FrameReader splits a syslog TCP stream into messages per RFC 6587: a frame
// that starts with a non-zero digit followed by digits and a space is
// octet-counted ("LEN SP MSG"); any other frame ends at a newline. Framing is
// decided per frame, as rsyslog does, so one connection may mix both.
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	br  *bufio.Reader
	max int
	raw []byte
	out []byte
}

// NewFrameReader reads frames from r; a message longer than maxMsg bytes is
// cut to maxMsg (the rest is read and discarded).
func NewFrameReader(r io.Reader, maxMsg int) *FrameReader {
	return &FrameReader{br: bufio.NewReaderSize(r, 16<<10), max: max(maxMsg, 1)}
}

// Next returns the next message, with a trailing "\r\n" removed and inner
// newlines replaced by "#012", and its size in Line.Size terms: greater than
// len(msg) exactly when the message was truncated. msg is valid until the
// next call. A last frame cut short by the end of the stream is returned as
// it is. Next may return a message and a read error together; at the end of
// the stream it returns io.EOF.
func (fr *FrameReader) Next() (msg []byte, size int, err error) {
	for {
		c, err := fr.br.ReadByte()
		if err != nil {
			return nil, 0, err
		}
		if c == '\n' || c == '\r' || c == 0 {
			continue // between frames
		}
		fr.raw = append(fr.raw[:0], c)
		if c >= '1' && c <= '9' {
			n, octet, err := fr.readCount(c)
			switch {
			case octet:
				size, err := fr.readCounted(n)
				return fr.finish(size, err)
			case err != nil: // the stream ended inside the digits: they are the message
				return fr.finish(len(fr.raw), err)
			case fr.raw[len(fr.raw)-1] == '\n':
				fr.raw = fr.raw[:len(fr.raw)-1]
				return fr.finish(len(fr.raw), nil)
			}
		}
		size, err := fr.readLine(len(fr.raw))
		m, sz, err := fr.finish(size, err)
		if len(m) == 0 && err == nil {
			continue // a blank line is not a message
		}
		return m, sz, err
	}
}

// readCount reads the rest of a MSG-LEN. It reports octet counting when at
// most 9 digits are followed by a space; otherwise the bytes read stay in
// fr.raw as the start of a newline-framed message.
func (fr *FrameReader) readCount(first byte) (n int, octet bool, err error) {
	n = int(first - '0')
	for digits := 1; ; digits++ {
		c, err := fr.br.ReadByte()
		if err != nil {
			return 0, false, err
		}
		switch {
		case c == ' ' && digits <= 9:
			return n, true, nil
		case c >= '0' && c <= '9' && digits < 9:
			n = n*10 + int(c-'0')
			fr.raw = append(fr.raw, c)
		default:
			fr.raw = append(fr.raw, c)
			return 0, false, nil
		}
	}
}

// readCounted reads an n-byte message into fr.raw, keeping at most fr.max.
func (fr *FrameReader) readCounted(n int) (int, error) {
	fr.raw = fr.raw[:0]
	keep := min(n, fr.max)
	for len(fr.raw) < keep {
		chunk, err := fr.br.Peek(min(keep-len(fr.raw), fr.br.Size()))
		fr.raw = append(fr.raw, chunk...)
		if _, derr := fr.br.Discard(len(chunk)); derr != nil && err == nil {
			err = derr
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return len(fr.raw), nil // cut short by the end of the stream
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return len(fr.raw), err
			}
		}
	}
	if rest := n - keep; rest > 0 {
		d, err := fr.br.Discard(rest)
		if err != nil && !errors.Is(err, io.EOF) {
			return keep + d, err
		}
		return keep + d, nil
	}
	return n, nil
}

// readLine reads up to and including '\n', appending to fr.raw (which holds
// size bytes already) at most fr.max bytes in all. It returns the size of
// the line without its '\n'.
func (fr *FrameReader) readLine(size int) (int, error) {
	for {
		chunk, err := fr.br.ReadSlice('\n')
		data := chunk
		if err == nil {
			data = chunk[:len(chunk)-1]
		}
		size += len(data)
		if room := fr.max - len(fr.raw); room > 0 {
			fr.raw = append(fr.raw, data[:min(room, len(data))]...)
		}
		switch {
		case err == nil, errors.Is(err, io.EOF):
			return size, nil
		case errors.Is(err, bufio.ErrBufferFull):
		default:
			return size, err
		}
	}
}

// finish turns fr.raw (size bytes originally) into the returned message.
func (fr *FrameReader) finish(size int, err error) ([]byte, int, error) {
	if len(fr.raw) > fr.max {
		fr.raw = fr.raw[:fr.max]
	}
	msg := fr.raw
	if size == len(msg) {
		msg = trimFrame(msg)
		size = len(msg)
	}
	var nl int
	fr.out, nl = escapeNewlines(fr.out[:0], msg)
	return fr.out, size + 3*nl, err
}

// trimFrame drops trailing newlines, carriage returns and NULs.
func trimFrame(b []byte) []byte {
	return bytes.TrimRight(b, "\r\n\x00")
}

// escapeNewlines appends b to dst with each '\n' written as "#012".
func escapeNewlines(dst, b []byte) ([]byte, int) {
	nl := 0
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(dst, b...), nl
		}
		dst = append(append(dst, b[:i]...), "#012"...)
		b = b[i+1:]
		nl++
	}
}
