package reporter_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

// TestSecureReports: a 2.7 worker's Kafka settings (SASL_SSL with every
// SASL mechanism, a client certificate with an encrypted key, a CRL)
// carry reports through sarama (devices and the reporter) against a
// broker that requires TLS client certificates and SASL.
func TestSecureReports(t *testing.T) {
	p := testenv.NewPKI(t)
	addr := testenv.StartSecureBroker(t, p)
	encKey := filepath.Join(p.Dir, "client-key-enc.pem")
	if out, err := exec.Command("openssl", "pkcs8", "-topk8", "-v2", "aes256", "-in", p.KeyFile, "-out", encKey, "-passout", "pass:kp").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v %s", err, out)
	}
	secure := func(mech, user string) kafkalog.Config {
		return kafkalog.Config{Brokers: []string{addr},
			TLS: kafkalog.TLSConfig{Enabled: true, CAFile: p.CAFile, CertFile: p.CertFile, KeyFile: encKey, KeyPassword: "kp",
				CRLFile: p.CRL(t, "crl.pem", false, time.Now().Add(time.Hour))},
			SASL: kafkalog.SASLConfig{Mechanism: mech, User: user, Password: testenv.Password}}
	}
	cfg := secure(kafkalog.SASLScramSHA512, testenv.Scram512User)
	names := reporter.Names{Reports: "secure-reports"}
	ctx := testenv.Context(t, 60*time.Second)
	if err := reporter.EnsureTopics(ctx, cfg, names); err != nil {
		t.Fatal(err)
	}
	devices := map[string]kafkalog.Config{
		"device-plain-0001":  secure(kafkalog.SASLPlain, testenv.PlainUser),
		"device-scram-0256":  secure(kafkalog.SASLScramSHA256, testenv.Scram256User),
		"device-scram-00512": cfg,
	}
	for dev, c := range devices {
		pub, err := reporter.NewPublisher(c, nil)
		if err != nil {
			t.Fatalf("%s (%s): %v", dev, c.SASL.Mechanism, err)
		}
		if err := reporter.NewSink(pub, names).Publish(ctx, dev, report(dev, 1)); err != nil {
			t.Fatalf("%s (%s): %v", dev, c.SASL.Mechanism, err)
		}
		pub.Close()
	}
	start(t, cfg, names)
	rd, err := kafkalog.NewTopicReader(ctx, cfg, reporter.DeviceEventsTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[string]bool{}
	for len(seen) < len(devices) {
		recs, err := rd.Fetch(ctx)
		if err != nil {
			t.Fatalf("device events (have %v): %v", seen, err)
		}
		for _, r := range recs {
			var ev events.DeviceEvent
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == events.DeviceReported {
				seen[ev.DeviceID] = true
			}
		}
	}
	for dev := range devices {
		if !seen[dev] {
			t.Fatalf("no report of %s (saw %v)", dev, seen)
		}
	}

	// Refused credentials: the device's publisher says so at start.
	bad := secure(kafkalog.SASLScramSHA512, testenv.Scram512User)
	bad.SASL.Password = "wrong"
	pub, err := reporter.NewPublisher(bad, nil)
	if err == nil {
		pub.Close()
		t.Fatal("a publisher with a wrong SASL password started")
	}
	if !strings.Contains(err.Error(), "check the SASL user and password") {
		t.Fatalf("wrong SASL password: %v", err)
	}
}
