package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// composeConfig resolves compose files with `docker-compose config` and
// the given admin token; it returns the output and whether it succeeded.
func composeConfig(t *testing.T, token string, files ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		testenv.SkipUnlessAvailable(t, "docker-compose not installed (Debian package docker-compose)")
	}
	var args []string
	for _, f := range files {
		args = append(args, "-f", f)
	}
	cmd := exec.Command(bin, append(args, "config")...)
	cmd.Env = append(os.Environ(), "NEBULA_AUTH_TOKEN="+token, "NEBULA_RECORD_KEY_SEED="+testenv.RecordKeySeed())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// requireAll fails for each of want that text lacks.
func requireAll(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// TestComposeFile: the compose file is valid (docker-compose resolves it)
// and keeps the durability settings the README promises.
func TestComposeFile(t *testing.T) {
	cfg, err := composeConfig(t, "compose-test-token", "compose.yaml")
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, cfg)
	}
	requireAll(t, "resolved compose config", cfg, "NEBULA_RECORD_KEY_SEED: "+testenv.RecordKeySeed(), "KAFKA_DEFAULT_REPLICATION_FACTOR: 3", "KAFKA_MIN_INSYNC_REPLICAS: 2",
		`KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE: "false"`, "kafka1:", "kafka2:", "kafka3:")
}

// TestComposeServices: the managers, the reporter and the load balancer
// are there, the managers wait for the topics, and the TLS override
// resolves with the managers on the SSL listener.
func TestComposeServices(t *testing.T) {
	cfg, err := composeConfig(t, "compose-test-token", "compose.yaml")
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, cfg)
	}
	requireAll(t, "resolved compose config", cfg, "kafka-init:", "--partitions 1 --replication-factor 3", "retention.ms=-1",
		"manager1:", "manager2:", "reporter:", "lb:", "service_completed_successfully", "nginx-lb.conf", "dockerfile: deploy/Dockerfile")
	tls, err := composeConfig(t, "compose-test-token", "compose.yaml", "compose.tls.yaml")
	if err != nil {
		t.Fatalf("docker-compose config with TLS: %v\n%s", err, tls)
	}
	requireAll(t, "resolved TLS compose config", tls, "NEBULA_KAFKA_SECURITY_PROTOCOL: SSL", "kafka1:9094",
		"KAFKA_SSL_CLIENT_AUTH: required", "SSL://kafka1:9094")
	// Without the admin token the file refuses to start.
	if out, err := composeConfig(t, "", "compose.yaml"); err == nil || !strings.Contains(out, "NEBULA_AUTH_TOKEN") {
		t.Errorf("compose config without NEBULA_AUTH_TOKEN: %v %s", err, out)
	}
}

// TestMakeCerts: the certificates make-certs.sh writes let Nebula's client
// reach a broker that requires TLS client certificates (kfake here, with
// the broker certificate), checking the broker's name.
func TestMakeCerts(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		testenv.SkipUnlessAvailable(t, "openssl not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command("sh", "make-certs.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("make-certs.sh: %v %s", err, out)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	cert, err := tls.LoadX509KeyPair(p("broker.pem"), p("broker-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(p("ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: c.ListenAddrs(), TLS: kafkalog.TLSConfig{Enabled: true, CAFile: p("ca.pem"),
		CertFile: p("client.pem"), KeyFile: p("client-key.pem"), ServerName: "kafka2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.AppendRaw(ctx, []byte(`{"probe":1}`), ""); err != nil {
		t.Fatal(err)
	}
}
