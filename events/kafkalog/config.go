package kafkalog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// DefaultTopic is the event topic's name unless configured otherwise.
const DefaultTopic = "nebula-events"

// Config says how to reach the event log. The same code serves the embedded
// broker and any Kafka cluster: only Brokers (and TLS/SASL) change.
type Config struct {
	// Brokers are the bootstrap servers, host:port.
	Brokers []string
	// Topic is the event topic; DefaultTopic if empty.
	Topic string
	// ClientID names this process to the brokers; "nebula" if empty.
	ClientID string
	// ReplicationFactor of the event topic when this process creates it;
	// 0 means the broker's default (-1 on the wire).
	ReplicationFactor int16
	// ProduceTimeout bounds one Append (franz-go retries records forever
	// otherwise); 10s if zero.
	ProduceTimeout time.Duration
	TLS            TLSConfig
	SASL           SASLConfig
	// Sign, when set, signs every record this log appends (the value of
	// the signature header, events/signing); records appended as given
	// (AppendRecords: a restore) keep their own.
	Sign func(value []byte) []byte
	// Logger receives franz-go's warnings and this package's messages.
	Logger *slog.Logger
}

// TLSConfig turns on TLS to the brokers. Files are PEM.
type TLSConfig struct {
	Enabled            bool
	CAFile             string // trust these CAs instead of the system pool
	CertFile, KeyFile  string // client certificate (mutual TLS)
	KeyPassword        string // password of an encrypted KeyFile
	CRLFile            string // CRLs (PEM or DER): refuse a revoked broker certificate
	ServerName         string // override the name checked in the certificate
	InsecureSkipVerify bool
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLConfig turns on SASL authentication when Mechanism is set.
type SASLConfig struct {
	Mechanism      string
	User, Password string
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClientID == "" {
		c.ClientID = "nebula"
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: no brokers given"))
	}
	for _, b := range c.Brokers {
		if i := strings.LastIndex(b, ":"); i <= 0 || i == len(b)-1 {
			errs = append(errs, fmt.Errorf("kafka: broker %q is not host:port", b))
		}
	}
	if c.Topic != "" {
		if err := ValidTopic(c.Topic); err != nil {
			errs = append(errs, fmt.Errorf("kafka: event topic: %w", err))
		}
	}
	if c.ProduceTimeout < 0 {
		errs = append(errs, errors.New("kafka: produce timeout is negative"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kafka: TLS client certificate and key must be given together"))
	}
	if c.TLS.KeyPassword != "" && c.TLS.KeyFile == "" {
		errs = append(errs, errors.New("kafka: a TLS key password was given without a key"))
	}
	if c.TLS.CRLFile != "" && c.TLS.InsecureSkipVerify {
		errs = append(errs, errors.New("kafka: a CRL file cannot be checked when certificates are not verified"))
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.ServerName != "" || c.TLS.InsecureSkipVerify || c.TLS.CRLFile != "") {
		errs = append(errs, errors.New("kafka: TLS options given but TLS is not enabled"))
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.User != "" || c.SASL.Password != "" {
			errs = append(errs, errors.New("kafka: SASL user or password given without a SASL mechanism"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.User == "" {
			errs = append(errs, fmt.Errorf("kafka: SASL %s needs a user", c.SASL.Mechanism))
		}
	case "GSSAPI":
		errs = append(errs, fmt.Errorf("kafka: SASL GSSAPI (Kerberos) is not supported; use %s or mutual TLS (see docs/api.md)", SASLScramSHA512))
	default:
		errs = append(errs, fmt.Errorf("kafka: SASL mechanism %q is not one of %s, %s, %s", c.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	}
	return errors.Join(errs...)
}

// clientOpts are the options every client of this package shares.
func (c Config) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.WithLogger(slogAdapter{c.Logger}),
	}
	if c.TLS.Enabled {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.SASL.Mechanism {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	return opts, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka TLS CA %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := loadKeyPair(t.CertFile, t.KeyFile, t.KeyPassword)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if t.CRLFile != "" {
		crls, err := loadCRLs(t.CRLFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS CRL: %w", err)
		}
		tc.VerifyConnection = checkRevocation(crls, time.Now)
	}
	return tc, nil
}

// slogAdapter passes franz-go's warnings and errors to slog; its info and
// debug chatter is dropped.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (a slogAdapter) Log(level kgo.LogLevel, msg string, kv ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	a.l.Log(nil, lvl, "kafka: "+msg, kv...) //nolint:staticcheck // no context at hand
}
