//go:build !agent

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
	"github.com/nebula-orchestrator/nebula-go/internal/broker"
	"github.com/nebula-orchestrator/nebula-go/worker"
)

func runDev(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var m managerSettings
	var kafkaListen string
	var syncWrites bool
	f := newFlags("dev", "Runs Nebula on this machine with no Kafka install: the embedded Kafka-protocol broker\n"+
		"(its log in DATA_DIR/kafka), the manager (its projection in DATA_DIR/projection), the reporter, and a worker of\n"+
		"device group `local` against the local Docker engine (DATA_DIR/worker).\n"+
		"Past one machine, run `nebula kafka` or Apache Kafka and `nebula manager --kafka-brokers`.", args)
	f.String(&m.listen, "listen", "127.0.0.1:5000", "manager HTTP API address host:port", "NEBULA_LISTEN")
	f.String(&m.dataDir, "data-dir", "nebula-data", "directory of everything stored (broker log and projection)", "NEBULA_DATA_DIR")
	f.String(&kafkaListen, "kafka-listen", "127.0.0.1:9092", "embedded broker address host:port (port 0 picks one)", "NEBULA_KAFKA_LISTEN")
	f.Bool(&syncWrites, "kafka-sync-writes", false, "fsync every broker write (survives power loss, slower)", "NEBULA_KAFKA_SYNC_WRITES")
	var saslUser, saslPassword string
	f.String(&saslUser, "kafka-sasl-user", "", "the embedded broker's clients must authenticate as this user (SASL SCRAM-SHA-512); required when --kafka-listen is not a loopback address", "NEBULA_KAFKA_SASL_USER")
	f.String(&saslPassword, "kafka-sasl-password", "", "its password, at least 12 characters (prefer the environment variable)", "NEBULA_KAFKA_SASL_PASSWORD")
	addAPIFlags(f, &m)
	addReporterFlags(f, &m.reports)
	var runWorker bool
	var group string
	f.Bool(&runWorker, "worker", true, "also run a worker against the local Docker engine (when one answers)", "NEBULA_DEV_WORKER")
	f.String(&group, "device-group", "local", "device group of that worker", "DEVICE_GROUP")
	var pull string
	f.String(&pull, "pull", "always", "when that worker pulls images: always (at every new version of an app), missing (only images the host lacks: images you built or loaded), never", "NEBULA_PULL")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	pullPolicy, err := worker.ParsePullPolicy(pull)
	if err != nil {
		return usageError{err}
	}
	if m.recordKey == "" && m.recordSeed == "" && !m.unsigned {
		// No record key given: one kept in the data directory, made at
		// the first run (a second manager of this log needs a copy).
		m.recordKey = filepath.Join(m.dataDir, "record.key")
		if _, created, err := signing.EnsureKey(m.recordKey); err != nil {
			return err
		} else if created {
			fmt.Fprintf(stdout, "nebula dev: made the record key %s: records are signed with it (give a copy to any other manager of this log)\n", m.recordKey)
		}
	}
	if err := m.validate(); err != nil {
		return usageError{err}
	}
	bcfg := broker.Config{Listen: kafkaListen, DataDir: filepath.Join(m.dataDir, "kafka"), SyncWrites: syncWrites,
		SASLUser: saslUser, SASLPassword: saslPassword, Logger: logger.With("component", "broker")}
	if err := bcfg.Validate(); err != nil {
		return usageError{err}
	}
	b, err := broker.Start(bcfg)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "nebula dev: Kafka broker on %s (data in %s)\n", b.Addr(), bcfg.DataDir)
	m.kafka.Brokers = []string{b.Addr()}
	if saslUser != "" {
		m.kafka.SASL = kafkalog.SASLConfig{Mechanism: broker.SASLMechanism, User: saslUser, Password: saslPassword}
	}
	if m.auth.Enabled && m.auth.User == "" && m.auth.Token == "" {
		// No local admin configured: make one, kept in the data
		// directory, so that a first run can use the API at once.
		path := filepath.Join(m.dataDir, "admin-token")
		token, err := adminToken(path)
		if err != nil {
			return err
		}
		m.auth.Token = token
		fmt.Fprintf(stdout, "nebula dev: local admin token in %s (curl -H \"Authorization: Bearer $(cat %s)\" ...)\n", path, path)
	}
	var wmu sync.Mutex
	var workerDone chan struct{}
	if runWorker {
		m.ready = func(url string) {
			wmu.Lock()
			defer wmu.Unlock()
			if ctx.Err() != nil {
				return
			}
			cfg := worker.Config{Group: group, Manager: url, Token: m.auth.Token, User: m.auth.User, Password: m.auth.Password,
				CheckIn: 30 * time.Second, RequestTimeout: 30 * time.Second, StateDir: filepath.Join(m.dataDir, "worker"),
				ReportInterval: 30 * time.Second, Pull: pullPolicy}
			workerDone = make(chan struct{})
			go func() {
				defer close(workerDone)
				err := serveWorker(ctx, cfg, stdout, logger.With("component", "worker"))
				if err != nil && ctx.Err() == nil {
					fmt.Fprintf(stdout, "nebula dev: no worker (%v); the manager runs on\n", err)
				}
			}()
		}
	}
	reporterDone := make(chan struct{})
	rctx, stopReporter := context.WithCancel(ctx)
	go func() {
		defer close(reporterDone)
		names, _ := m.reports.config() // validated with m
		if err := serveReporter(rctx, m.kafka, names, stdout, logger.With("component", "reporter")); err != nil && rctx.Err() == nil {
			fmt.Fprintf(stdout, "nebula dev: the reporter stopped: %v\n", err)
		}
	}()
	err = serveManager(ctx, m, stdout, logger)
	stopReporter()
	<-reporterDone
	wmu.Lock()
	done := workerDone
	wmu.Unlock()
	if done != nil {
		<-done
	}
	return err
}

// adminToken reads the token at path, creating it (mode 0600) if missing.
func adminToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); len(t) >= 8 {
			return t, nil
		}
		return "", fmt.Errorf("%s holds no usable token (at least 8 characters); delete it to get a new one", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	t := commands.NewSecret()
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the admin token: %w", err)
	}
	return t, nil
}
