package main

import (
	"fmt"
	"strings"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
)

// kafkaFlags are the settings of a client of an external Kafka cluster.
// The original worker's and reporter's KAFKA_* variables are accepted as
// fallbacks, so one environment can configure every component.
type kafkaFlags struct {
	brokers, protocol string
	replication       int
	cfg               kafkalog.Config
}

func addKafkaFlags(f *flags, k *kafkaFlags) {
	f.String(&k.brokers, "kafka-brokers", "", "bootstrap servers of the Kafka cluster, host:port,host:port", "NEBULA_KAFKA_BROKERS", "KAFKA_BOOTSTRAP_SERVERS")
	f.String(&k.cfg.Topic, "kafka-topic", kafkalog.DefaultTopic, "event topic (created at start if missing: 1 partition, infinite retention)", "NEBULA_KAFKA_TOPIC")
	f.Int(&k.replication, "kafka-replication-factor", 0, "replication factor of the event topic when this process creates it (0: the cluster's default; use 3 in production)", "NEBULA_KAFKA_REPLICATION_FACTOR")
	f.String(&k.protocol, "kafka-security-protocol", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (SSL turns TLS on)", "NEBULA_KAFKA_SECURITY_PROTOCOL", "KAFKA_SECURITY_PROTOCOL")
	f.String(&k.cfg.TLS.CAFile, "kafka-tls-ca", "", "PEM file of the CAs to trust instead of the system's", "NEBULA_KAFKA_TLS_CA", "KAFKA_SSL_CAFILE")
	f.String(&k.cfg.TLS.CertFile, "kafka-tls-cert", "", "PEM client certificate (mutual TLS)", "NEBULA_KAFKA_TLS_CERT", "KAFKA_SSL_CERTFILE")
	f.String(&k.cfg.TLS.KeyFile, "kafka-tls-key", "", "PEM client key (mutual TLS)", "NEBULA_KAFKA_TLS_KEY", "KAFKA_SSL_KEYFILE")
	f.String(&k.cfg.TLS.ServerName, "kafka-tls-server-name", "", "name to check in the brokers' certificates", "NEBULA_KAFKA_TLS_SERVER_NAME")
	f.Bool(&k.cfg.TLS.InsecureSkipVerify, "kafka-tls-insecure", false, "do not verify the brokers' certificates (testing only)", "NEBULA_KAFKA_TLS_INSECURE")
	f.String(&k.cfg.SASL.Mechanism, "kafka-sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", "NEBULA_KAFKA_SASL_MECHANISM", "KAFKA_SASL_MECHANISM")
	f.String(&k.cfg.SASL.User, "kafka-sasl-user", "", "SASL user", "NEBULA_KAFKA_SASL_USER", "KAFKA_SASL_PLAIN_USERNAME")
	f.String(&k.cfg.SASL.Password, "kafka-sasl-password", "", "SASL password (prefer the environment variable to the flag)", "NEBULA_KAFKA_SASL_PASSWORD", "KAFKA_SASL_PLAIN_PASSWORD")
}

// config returns the validated client configuration.
func (k *kafkaFlags) config() (kafkalog.Config, error) {
	cfg := k.cfg
	cfg.Brokers = splitList(k.brokers)
	if k.replication < 0 || k.replication > 32767 {
		return cfg, fmt.Errorf("kafka replication factor %d is not between 0 and 32767", k.replication)
	}
	cfg.ReplicationFactor = int16(k.replication)
	switch p := strings.ToUpper(k.protocol); p {
	case "PLAINTEXT", "SASL_PLAINTEXT":
		if p == "SASL_PLAINTEXT" && cfg.SASL.Mechanism == "" {
			return cfg, fmt.Errorf("kafka security protocol %s needs --kafka-sasl-mechanism", p)
		}
	case "SSL", "SASL_SSL":
		cfg.TLS.Enabled = true
		if p == "SASL_SSL" && cfg.SASL.Mechanism == "" {
			return cfg, fmt.Errorf("kafka security protocol %s needs --kafka-sasl-mechanism", p)
		}
	default:
		return cfg, fmt.Errorf("kafka security protocol %q is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", k.protocol)
	}
	cfg.SASL.Mechanism = strings.ToUpper(cfg.SASL.Mechanism)
	return cfg, cfg.Validate()
}
