package main

import (
	"fmt"
	"strings"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/reporter"
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
	f.String(&k.cfg.TLS.KeyPassword, "kafka-tls-key-password", "", "password of an encrypted client key (prefer the environment variable)", "NEBULA_KAFKA_TLS_KEY_PASSWORD", "KAFKA_SSL_PASSWORD")
	f.String(&k.cfg.TLS.CRLFile, "kafka-tls-crl", "", "PEM or DER file of CRLs: refuse a revoked broker certificate", "NEBULA_KAFKA_TLS_CRL", "KAFKA_SSL_CRLFILE")
	f.String(&k.cfg.TLS.ServerName, "kafka-tls-server-name", "", "name to check in the brokers' certificates", "NEBULA_KAFKA_TLS_SERVER_NAME")
	f.Bool(&k.cfg.TLS.InsecureSkipVerify, "kafka-tls-insecure", false, "do not verify the brokers' certificates (testing only)", "NEBULA_KAFKA_TLS_INSECURE")
	f.String(&k.cfg.SASL.Mechanism, "kafka-sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", "NEBULA_KAFKA_SASL_MECHANISM", "KAFKA_SASL_MECHANISM")
	f.String(&k.cfg.SASL.User, "kafka-sasl-user", "", "SASL user", "NEBULA_KAFKA_SASL_USER", "KAFKA_SASL_PLAIN_USERNAME")
	f.String(&k.cfg.SASL.Password, "kafka-sasl-password", "", "SASL password (prefer the environment variable to the flag)", "NEBULA_KAFKA_SASL_PASSWORD", "KAFKA_SASL_PLAIN_PASSWORD")
}

// reportsFlags name the reports topic and the reporters' consumer group
// (Nebula 2.7's KAFKA_TOPIC, KAFKA_GROUP_ID, KAFKA_AUTO_OFFSET_RESET).
type reportsFlags struct {
	names       reporter.Names
	offsetReset string
}

// addReportsTopicFlag is for every process that publishes reports.
func addReportsTopicFlag(f *flags, r *reportsFlags) {
	f.String(&r.names.Reports, "reports-topic", reporter.ReportsTopic, "Kafka topic of device reports (reports that cannot be accepted go to TOPIC-poison)", "NEBULA_REPORTS_TOPIC", "KAFKA_TOPIC")
}

// addReporterFlags is for the processes that run a reporter.
func addReporterFlags(f *flags, r *reportsFlags) {
	f.String(&r.names.Group, "reporter-group", reporter.ConsumerGroup, "consumer group of the reporters (they share the reports topic's partitions)", "NEBULA_REPORTER_GROUP", "KAFKA_GROUP_ID")
	f.String(&r.offsetReset, "reporter-offset-reset", "earliest", "where a new consumer group starts in the reports topic: earliest or latest", "NEBULA_REPORTER_OFFSET_RESET", "KAFKA_AUTO_OFFSET_RESET")
}

// config returns the validated names.
func (r *reportsFlags) config() (reporter.Names, error) {
	n := r.names
	switch strings.ToLower(r.offsetReset) {
	case "", "earliest":
	case "latest":
		n.FromLatest = true
	default:
		return n, fmt.Errorf("reporter offset reset %q is not earliest or latest", r.offsetReset)
	}
	return n, n.Validate()
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
