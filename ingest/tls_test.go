package ingest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/watchfloor/watchfloor/ingest"
)

// testCA is a private CA made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, dir: t.TempDir()}
	writePEM(t, filepath.Join(ca.dir, "ca.pem"), "CERTIFICATE", der)
	return ca
}

func (ca *testCA) file() string { return filepath.Join(ca.dir, "ca.pem") }

// issue writes name.pem and name-key.pem, a leaf for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kd)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedTLS(t *testing.T) {
	ca := newCA(t, "watchfloor test CA")
	other := newCA(t, "someone else")
	srvCert, srvKey := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, "sensor", x509.ExtKeyUsageClientAuth)
	strangerCert, strangerKey := other.issue(t, "stranger", x509.ExtKeyUsageClientAuth)

	for _, verifyClients := range []bool{false, true} {
		sc := ingest.TLSConfig{CertFile: srvCert, KeyFile: srvKey}
		if verifyClients {
			sc.CAFile = ca.file()
		}
		tc, err := sc.ServerTLS()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := ingest.StartEmbedded(ingest.EmbeddedConfig{DataDir: t.TempDir(), Host: "127.0.0.1", Port: -1, MaxStore: 64 << 20, TLS: tc}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		url := srv.ClientURL()
		tests := []struct {
			name   string
			give   ingest.TLSConfig
			plain  bool
			wantOK bool
		}{
			{"plain text refused", ingest.TLSConfig{}, true, false},
			{"server CA trusted", ingest.TLSConfig{CAFile: ca.file()}, false, !verifyClients},
			{"unknown server CA refused", ingest.TLSConfig{CAFile: other.file()}, false, false},
			{"client certificate", ingest.TLSConfig{CAFile: ca.file(), CertFile: cliCert, KeyFile: cliKey}, false, true},
			{"client certificate of another CA", ingest.TLSConfig{CAFile: ca.file(), CertFile: strangerCert, KeyFile: strangerKey}, false, !verifyClients},
		}
		for _, tt := range tests {
			opts, err := tt.give.ClientOptions()
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, nats.MaxReconnects(0), nats.Timeout(2*time.Second))
			nc, err := nats.Connect(url, opts...)
			if err == nil {
				err = nc.Flush() // a refused client certificate shows here
				nc.Close()
			}
			if got := err == nil; got != tt.wantOK {
				t.Errorf("verify clients %v, %s: connected = %v (err %v), want %v", verifyClients, tt.name, got, err, tt.wantOK)
			}
		}
		srv.Shutdown()
	}
}
