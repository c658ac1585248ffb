package main

import (
	"strings"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/reporter"
)

func parseKafka(t *testing.T, env map[string]string, args ...string) (kafkaFlags, error) {
	t.Helper()
	for _, k := range []string{"NEBULA_KAFKA_BROKERS", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "NEBULA_KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM"} {
		t.Setenv(k, env[k])
	}
	var k kafkaFlags
	f := newFlags("test", "", args)
	addKafkaFlags(f, &k)
	if err := f.Parse(args); err != nil {
		return k, err
	}
	_, err := k.config()
	return k, err
}

func TestKafkaFlags(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
		check   func(t *testing.T, k kafkaFlags)
	}{
		{name: "flag", args: []string{"--kafka-brokers", "a:9092, b:9093"}, check: func(t *testing.T, k kafkaFlags) {
			cfg, _ := k.config()
			if strings.Join(cfg.Brokers, ",") != "a:9092,b:9093" || cfg.TLS.Enabled {
				t.Errorf("config %+v", cfg)
			}
		}},
		{name: "original worker variable", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "KAFKA_SECURITY_PROTOCOL": "ssl"},
			check: func(t *testing.T, k kafkaFlags) {
				cfg, _ := k.config()
				if strings.Join(cfg.Brokers, ",") != "k:9092" || !cfg.TLS.Enabled {
					t.Errorf("config %+v", cfg)
				}
			}},
		{name: "nebula variable wins", env: map[string]string{"NEBULA_KAFKA_BROKERS": "n:1", "KAFKA_BOOTSTRAP_SERVERS": "k:2"},
			check: func(t *testing.T, k kafkaFlags) {
				if cfg, _ := k.config(); strings.Join(cfg.Brokers, ",") != "n:1" {
					t.Errorf("brokers %v", cfg.Brokers)
				}
			}},
		{name: "no brokers", wantErr: "no brokers"},
		{name: "bad protocol", args: []string{"--kafka-brokers", "a:1", "--kafka-security-protocol", "TLS"}, wantErr: "not PLAINTEXT"},
		{name: "sasl protocol without mechanism", args: []string{"--kafka-brokers", "a:1", "--kafka-security-protocol", "SASL_SSL"}, wantErr: "needs --kafka-sasl-mechanism"},
		{name: "bad mechanism", args: []string{"--kafka-brokers", "a:1", "--kafka-sasl-mechanism", "GSSAPI", "--kafka-sasl-user", "u"}, wantErr: "GSSAPI"},
		{name: "replication out of range", args: []string{"--kafka-brokers", "a:1", "--kafka-replication-factor", "-1"}, wantErr: "replication factor"},
		{name: "broker not host:port", args: []string{"--kafka-brokers", "a"}, wantErr: "not host:port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := parseKafka(t, c.env, c.args...)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, k)
		})
	}
}

func TestReportsFlags(t *testing.T) {
	cases := []struct {
		name, wantErr string
		env           map[string]string
		args          []string
		want          reporter.Names
	}{
		{name: "defaults", want: reporter.Names{Reports: reporter.ReportsTopic, Group: reporter.ConsumerGroup}},
		{name: "original variables", env: map[string]string{"KAFKA_TOPIC": "site.reports", "KAFKA_GROUP_ID": "g1", "KAFKA_AUTO_OFFSET_RESET": "latest"},
			want: reporter.Names{Reports: "site.reports", Group: "g1", FromLatest: true}},
		{name: "flags win", env: map[string]string{"KAFKA_TOPIC": "a"}, args: []string{"--reports-topic", "b", "--reporter-offset-reset", "EARLIEST"},
			want: reporter.Names{Reports: "b", Group: reporter.ConsumerGroup}},
		{name: "bad topic", args: []string{"--reports-topic", "my reports"}, wantErr: "not a Kafka topic name"},
		{name: "topic too long", args: []string{"--reports-topic", strings.Repeat("r", 249)}, wantErr: "not a Kafka topic name"},
		{name: "device events topic", args: []string{"--reports-topic", reporter.DeviceEventsTopic}, wantErr: "device events topic"},
		{name: "bad offset reset", env: map[string]string{"KAFKA_AUTO_OFFSET_RESET": "smallest"}, wantErr: "not earliest or latest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"KAFKA_TOPIC", "NEBULA_REPORTS_TOPIC", "KAFKA_GROUP_ID", "NEBULA_REPORTER_GROUP", "KAFKA_AUTO_OFFSET_RESET", "NEBULA_REPORTER_OFFSET_RESET"} {
				t.Setenv(k, c.env[k])
			}
			var r reportsFlags
			f := newFlags("test", "", c.args)
			addReportsTopicFlag(f, &r)
			addReporterFlags(f, &r)
			if err := f.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			got, err := r.config()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("names %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}
