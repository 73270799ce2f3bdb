package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// TLSConfig names the PEM files of one side of a NATS TLS connection.
// Secrets stay in files; only paths are configured or logged.
type TLSConfig struct {
	CAFile   string // clients: CA that signs the server; server: CA that signs client certificates
	CertFile string // certificate (server: required for TLS; client: optional client certificate)
	KeyFile  string // its private key
}

// Enabled reports whether any file is set.
func (c TLSConfig) Enabled() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// Validate reports a half-configured pair, naming the key prefix given.
func (c TLSConfig) Validate(prefix string) error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%s_cert and %s_key must be given together", prefix, prefix)
	}
	for _, f := range []string{c.CAFile, c.CertFile, c.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s: %w", prefix, err)
		}
	}
	return nil
}

func (c TLSConfig) pool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read CA %s: %w", c.CAFile, err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read CA %s: no PEM certificate in it", c.CAFile)
	}
	return p, nil
}

// ServerTLS is the embedded server's TLS: CertFile/KeyFile are required;
// with CAFile, clients must present a certificate signed by it.
func (c TLSConfig) ServerTLS() (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("server TLS needs a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load server certificate %s: %w", c.CertFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		p, err := c.pool()
		if err != nil {
			return nil, err
		}
		tc.ClientCAs, tc.ClientAuth = p, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// ClientOptions are the nats.go options for a client: verify the server
// with CAFile (else the system roots) and present CertFile if set.
func (c TLSConfig) ClientOptions() ([]nats.Option, error) {
	if !c.Enabled() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		p, err := c.pool()
		if err != nil {
			return nil, err
		}
		tc.RootCAs = p
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s: %w", c.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return []nats.Option{nats.Secure(tc)}, nil
}
