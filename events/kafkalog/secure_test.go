package kafkalog_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// encryptedKeys writes the PKI's client key encrypted with password in
// the two forms Nebula 2.7 users have: PKCS#8 by openssl (PBES2,
// PBKDF2-HMAC-SHA256, AES-256-CBC) and the legacy OpenSSL PEM form.
func encryptedKeys(t *testing.T, p *testenv.PKI, password string) (pkcs8, legacy string) {
	t.Helper()
	pkcs8 = filepath.Join(p.Dir, "client-key-pkcs8.pem")
	if out, err := exec.Command("openssl", "pkcs8", "-topk8", "-v2", "aes256", "-in", p.KeyFile, "-out", pkcs8,
		"-passout", "pass:"+password).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs8: %v %s", err, out)
	}
	raw, _ := os.ReadFile(p.KeyFile)
	block, _ := pem.Decode(raw)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := x509.MarshalPKCS8PrivateKey(key)
	enc, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", ec, []byte(password), x509.PEMCipherAES256) //nolint:staticcheck // the legacy form under test
	if err != nil {
		t.Fatal(err)
	}
	legacy = filepath.Join(p.Dir, "client-key-legacy.pem")
	if err := os.WriteFile(legacy, pem.EncodeToMemory(enc), 0o600); err != nil {
		t.Fatal(err)
	}
	return pkcs8, legacy
}

// TestSecureCluster: the event log over SASL_SSL with mutual TLS, against
// a broker that requires both, for every SASL mechanism, with encrypted
// client keys (kafka_ssl_password) and a CRL (kafka_ssl_crlfile); and
// each way of getting these wrong fails with a clear error.
func TestSecureCluster(t *testing.T) {
	t.Parallel()
	p := testenv.NewPKI(t)
	addr := testenv.StartSecureBroker(t, p)
	const keyPassword = "key-pass-42"
	pkcs8Key, legacyKey := encryptedKeys(t, p, keyPassword)
	goodCRL := p.CRL(t, "crl.pem", false, time.Now().Add(time.Hour))
	revokedCRL := p.CRL(t, "revoked.pem", true, time.Now().Add(time.Hour))
	expiredCRL := p.CRL(t, "expired.pem", false, time.Now().Add(-time.Minute))
	otherCRL := testenv.NewPKI(t).CRL(t, "other.pem", false, time.Now().Add(time.Hour))

	base := func() kafkalog.Config {
		return kafkalog.Config{Brokers: []string{addr}, Topic: "secure-events", ProduceTimeout: 5 * time.Second,
			TLS:  kafkalog.TLSConfig{Enabled: true, CAFile: p.CAFile, CertFile: p.CertFile, KeyFile: p.KeyFile},
			SASL: kafkalog.SASLConfig{Mechanism: kafkalog.SASLScramSHA512, User: testenv.Scram512User, Password: testenv.Password}}
	}
	cases := []struct {
		name    string
		edit    func(c *kafkalog.Config)
		wantErr string
	}{
		{name: "scram-sha-512, plain key", edit: func(*kafkalog.Config) {}},
		{name: "scram-sha-256, pkcs8 key, crl", edit: func(c *kafkalog.Config) {
			c.SASL = kafkalog.SASLConfig{Mechanism: kafkalog.SASLScramSHA256, User: testenv.Scram256User, Password: testenv.Password}
			c.TLS.KeyFile, c.TLS.KeyPassword, c.TLS.CRLFile = pkcs8Key, keyPassword, goodCRL
		}},
		{name: "plain, legacy key", edit: func(c *kafkalog.Config) {
			c.SASL = kafkalog.SASLConfig{Mechanism: kafkalog.SASLPlain, User: testenv.PlainUser, Password: testenv.Password}
			c.TLS.KeyFile, c.TLS.KeyPassword = legacyKey, keyPassword
		}},
		{name: "wrong key password", edit: func(c *kafkalog.Config) { c.TLS.KeyFile, c.TLS.KeyPassword = pkcs8Key, "nope" }, wantErr: "wrong password"},
		{name: "wrong legacy key password", edit: func(c *kafkalog.Config) { c.TLS.KeyFile, c.TLS.KeyPassword = legacyKey, "nope" }, wantErr: "wrong password"},
		{name: "encrypted key without password", edit: func(c *kafkalog.Config) { c.TLS.KeyFile = pkcs8Key }, wantErr: "KAFKA_SSL_PASSWORD"},
		{name: "password for a plain key", edit: func(c *kafkalog.Config) { c.TLS.KeyPassword = "x" }, wantErr: "not encrypted"},
		{name: "revoked broker certificate", edit: func(c *kafkalog.Config) { c.TLS.CRLFile = revokedCRL }, wantErr: "is revoked"},
		{name: "expired CRL", edit: func(c *kafkalog.Config) { c.TLS.CRLFile = expiredCRL }, wantErr: "expired"},
		{name: "CRL of another CA", edit: func(c *kafkalog.Config) { c.TLS.CRLFile = otherCRL }, wantErr: "no CRL of the broker certificate's issuer"},
		{name: "CRL file is not a CRL", edit: func(c *kafkalog.Config) { c.TLS.CRLFile = p.CAFile }, wantErr: "no X509 CRL"},
		{name: "wrong SASL password", edit: func(c *kafkalog.Config) { c.SASL.Password = "wrong" }, wantErr: "check the SASL user and password"},
		{name: "no client certificate", edit: func(c *kafkalog.Config) { c.TLS.CertFile, c.TLS.KeyFile = "", "" }, wantErr: "certificate required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.edit(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			timeout := 20 * time.Second
			if c.wantErr != "" {
				timeout = 3 * time.Second // what the retries can fix is fixed by then
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			l, err := kafkalog.Open(ctx, cfg)
			if c.wantErr != "" {
				if err == nil {
					l.Close()
					t.Fatalf("Open succeeded, want an error containing %q", c.wantErr)
				}
				t.Log(err)
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Open: %v, want an error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			a, err := l.AppendRaw(ctx, []byte(`{"type":"probe"}`), "")
			if err != nil {
				t.Fatal(err)
			}
			b, err := l.AppendRaw(ctx, []byte(`{"type":"probe"}`), "")
			if err != nil || b <= a {
				t.Fatalf("offsets %d then %d (%v)", a, b, err)
			}
		})
	}
}
