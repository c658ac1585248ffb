package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// PKI is a throwaway certificate authority with a broker certificate for
// 127.0.0.1 and a client certificate, written as PEM files in Dir.
type PKI struct {
	Dir                              string
	CAFile, CertFile, KeyFile        string // client certificate and key
	ServerCertFile, ServerKeyFile    string
	ca                               *x509.Certificate
	caKey                            *ecdsa.PrivateKey
	server                           tls.Certificate
	serverSerial, clientSerial, next int64
}

// NewPKI makes a CA, a broker and a client certificate in a temporary
// directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), next: 1}
	p.caKey = newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial()), Subject: pkix.Name{CommonName: "nebula test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)

	p.serverSerial = p.serial()
	skey := newKey(t)
	sder := p.issue(t, &x509.Certificate{SerialNumber: big.NewInt(p.serverSerial), Subject: pkix.Name{CommonName: "broker"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, skey)
	p.ServerCertFile = p.write(t, "broker.pem", "CERTIFICATE", sder)
	skeyDER, _ := x509.MarshalPKCS8PrivateKey(skey)
	p.ServerKeyFile = p.write(t, "broker-key.pem", "PRIVATE KEY", skeyDER)
	p.server = tls.Certificate{Certificate: [][]byte{sder}, PrivateKey: skey}

	p.clientSerial = p.serial()
	ckey := newKey(t)
	cder := p.issue(t, &x509.Certificate{SerialNumber: big.NewInt(p.clientSerial), Subject: pkix.Name{CommonName: "nebula client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ckey)
	p.CertFile = p.write(t, "client.pem", "CERTIFICATE", cder)
	ckeyDER, _ := x509.MarshalPKCS8PrivateKey(ckey)
	p.KeyFile = p.write(t, "client-key.pem", "PRIVATE KEY", ckeyDER)
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *PKI) serial() int64 { p.next++; return p.next }

func (p *PKI) issue(t testing.TB, tmpl *x509.Certificate, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (p *PKI) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// CRL writes a CRL of the CA, valid until nextUpdate, that revokes the
// broker's certificate if revokeBroker, and returns its path.
func (p *PKI) CRL(t testing.TB, name string, revokeBroker bool, nextUpdate time.Time) string {
	t.Helper()
	var revoked []x509.RevocationListEntry
	if revokeBroker {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: big.NewInt(p.serverSerial), RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(p.serial()),
		ThisUpdate: time.Now().Add(-2 * time.Hour), NextUpdate: nextUpdate, RevokedCertificateEntries: revoked}, p.ca, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name, "X509 CRL", der)
}

// SecureBroker users: one per SASL mechanism, all with Password.
const (
	PlainUser    = "plain-user"
	Scram256User = "scram256-user"
	Scram512User = "scram512-user"
	Password     = "test-password-1"
)

// StartSecureBroker starts an in-memory kfake broker that requires TLS
// (with a client certificate of p's CA) and SASL (PLAIN, SCRAM-SHA-256
// or SCRAM-SHA-512 with the users above): SASL_SSL with mutual TLS.
func StartSecureBroker(t testing.TB, p *PKI) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	c, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", PlainUser, Password),
		kfake.Superuser("SCRAM-SHA-256", Scram256User, Password), kfake.Superuser("SCRAM-SHA-512", Scram512User, Password))
	if err != nil {
		t.Fatalf("start secure broker: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}
