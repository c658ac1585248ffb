package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/worker"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "conf.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseAPI(t *testing.T, args ...string) (managerSettings, kafkaFlags, error) {
	t.Helper()
	var m managerSettings
	var k kafkaFlags
	f := newFlags("manager", "", args)
	addKafkaFlags(f, &k)
	addAPIFlags(f, &m)
	return m, k, f.Parse(args)
}

func TestConfigFile(t *testing.T) {
	for _, e := range []string{"BASIC_AUTH_USER", "NEBULA_BASIC_AUTH_USER", "CACHE_TIME", "NEBULA_CACHE_TIME", "NEBULA_CONFIG", "AUTH_ENABLED", "KAFKA_BOOTSTRAP_SERVERS", "NEBULA_KAFKA_BROKERS"} {
		t.Setenv(e, "")
	}
	// Nebula 2.7's keys, with its types (numbers and booleans unquoted).
	path := writeConfig(t, `{"mongo_url": "mongodb://old:27017", "basic_auth_user": "admin", "basic_auth_password": "password1", "cache_time": 30,
		"auth_enabled": false, "kafka_brokers": "k1:9092,k2:9092"}`)
	m, k, err := parseAPI(t, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := k.config()
	if m.auth.User != "admin" || m.auth.Password != "password1" || m.cacheTime != 30*time.Second || m.auth.Enabled ||
		strings.Join(cfg.Brokers, ",") != "k1:9092,k2:9092" {
		t.Fatalf("from the file: %+v %v", m, cfg.Brokers)
	}

	// The environment beats the file; the command line beats both.
	t.Setenv("CACHE_TIME", "5")
	t.Setenv("NEBULA_CONFIG", path)
	m, _, err = parseAPI(t, "--basic-auth-user", "flag-user")
	if err != nil {
		t.Fatal(err)
	}
	if m.cacheTime != 5*time.Second || m.auth.User != "flag-user" || m.auth.Password != "password1" {
		t.Fatalf("precedence: %+v", m)
	}

	t.Setenv("CACHE_TIME", "")
	for body, want := range map[string]string{
		`{"cache_tim": 3}`:         `unknown settings ["cache_tim"]`,
		`[1, 2]`:                   "not a JSON object",
		`{"cache_time": [1]}`:      "must be a string, number or boolean",
		`{"cache_time": "soon"}`:   "not a duration",
		`{"auth_enabled": "nope"}`: "not a boolean",
	} {
		_, _, err := parseAPI(t, "--config="+writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %s: error %v, want one containing %q", body, err, want)
		}
	}
	if _, _, err := parseAPI(t, "-config", filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing config file: %v", err)
	}
}

// TestWorkerGroupName: a device group name the manager cannot have is
// refused at start, with the rule, instead of polling a group that never
// exists.
func TestWorkerGroupName(t *testing.T) {
	for group, ok := range map[string]bool{"edge-eu_1": true, "edge eu": false, "../x": false, strings.Repeat("g", 300): false} {
		w := workerSettings{uri: "http://m:80"}
		w.cfg.Group, w.cfg.CheckIn, w.cfg.RequestTimeout = group, time.Second, time.Second
		_, err := w.config(t.TempDir())
		if (err == nil) != ok || !ok && !strings.Contains(err.Error(), "device group") {
			t.Errorf("group %.20q: %v", group, err)
		}
	}
}

// TestWorkerContainerNamePrefix: a prefix that makes container names
// Docker refuses is refused at start.
func TestWorkerContainerNamePrefix(t *testing.T) {
	for prefix, ok := range map[string]bool{"": true, "dev3-": true, "site.a_": true, "-x": false, "my prefix": false, "a/b": false} {
		w := workerSettings{uri: "http://m:80"}
		w.cfg.Group, w.cfg.CheckIn, w.cfg.RequestTimeout, w.cfg.Host.NamePrefix = "edge", time.Second, time.Second, prefix
		_, err := w.config(t.TempDir())
		if (err == nil) != ok || !ok && !strings.Contains(err.Error(), "container name prefix") {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
}

// TestWorkerPullPolicy: --pull takes always (the default), missing or
// never, and nothing else.
func TestWorkerPullPolicy(t *testing.T) {
	for pull, want := range map[string]worker.PullPolicy{"": worker.PullAlways, "always": worker.PullAlways, "missing": worker.PullMissing,
		"never": worker.PullNever, "sometimes": "", "Always": ""} {
		w := workerSettings{uri: "http://m:80", pull: pull}
		w.cfg.Group, w.cfg.CheckIn, w.cfg.RequestTimeout = "edge", time.Second, time.Second
		cfg, err := w.config(t.TempDir())
		if want == "" && (err == nil || !strings.Contains(err.Error(), "pull policy")) || want != "" && (err != nil || cfg.Pull != want) {
			t.Errorf("pull %q: %q %v", pull, cfg.Pull, err)
		}
	}
}
