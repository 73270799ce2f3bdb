package ingest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the in-process JetStream server used when no
// NATS URL is configured (the single-machine default).
type EmbeddedConfig struct {
	DataDir  string // JetStream store lives in DataDir/jetstream
	Host     string
	Port     int   // -1 picks a free port
	MaxStore int64 // bytes of file storage JetStream may use
	// Users, when not empty, turns on authorization: only these users
	// (see Users.ServerUsers) may connect, each with its permissions.
	Users []*server.User
	// TLS, when not nil, makes the listener TLS-only (see TLSConfig.ServerTLS).
	TLS *tls.Config
}

// Validate reports the first bad setting, naming its key.
func (c EmbeddedConfig) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("data_dir must be set for the embedded NATS server")
	case c.Port < -1 || c.Port > 65535:
		return fmt.Errorf("nats.embedded_port must be between -1 and 65535, got %d", c.Port)
	case c.MaxStore < 64<<20:
		return fmt.Errorf("nats.embedded_max_store must be at least 67108864 bytes, got %d", c.MaxStore)
	}
	return nil
}

// StartEmbedded starts a JetStream-enabled nats-server in this process and
// waits until it accepts connections.
func StartEmbedded(c EmbeddedConfig, log *slog.Logger) (*server.Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:         "watchfloor-embedded",
		Host:               c.Host,
		Port:               c.Port,
		JetStream:          true,
		StoreDir:           filepath.Join(c.DataDir, "jetstream"),
		JetStreamMaxStore:  c.MaxStore,
		JetStreamMaxMemory: 256 << 20,
		NoSigs:             true,
		NoLog:              true,
		Users:              c.Users,
	}
	if c.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, c.TLS, 2
		opts.TLSVerify = c.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats on %s:%d: %w", c.Host, c.Port, err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("start embedded nats on %s:%d: not ready after 15s (port in use?)", c.Host, c.Port)
	}
	log.Info("embedded NATS JetStream started", "url", s.ClientURL(), "store", opts.StoreDir)
	return s, nil
}
