package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/nebula-orchestrator/nebula-go/internal/broker"
)

func runDev(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var m managerSettings
	var kafkaListen string
	var syncWrites bool
	f := newFlags("dev", "Runs Nebula on this machine with no Kafka install: the embedded Kafka-protocol broker\n"+
		"(its log in DATA_DIR/kafka) and the manager (its projection in DATA_DIR/projection).\n"+
		"Past one machine, run `nebula kafka` or Apache Kafka and `nebula manager --kafka-brokers`.")
	f.String(&m.listen, "listen", "127.0.0.1:5000", "manager HTTP API address host:port", "NEBULA_LISTEN")
	f.String(&m.dataDir, "data-dir", "nebula-data", "directory of everything stored (broker log and projection)", "NEBULA_DATA_DIR")
	f.String(&kafkaListen, "kafka-listen", "127.0.0.1:9092", "embedded broker address host:port (port 0 picks one)", "NEBULA_KAFKA_LISTEN")
	f.Bool(&syncWrites, "kafka-sync-writes", false, "fsync every broker write (survives power loss, slower)", "NEBULA_KAFKA_SYNC_WRITES")
	addAPIFlags(f, &m)
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	if err := m.validate(); err != nil {
		return usageError{err}
	}
	bcfg := broker.Config{Listen: kafkaListen, DataDir: filepath.Join(m.dataDir, "kafka"), SyncWrites: syncWrites,
		Logger: logger.With("component", "broker")}
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
	return serveManager(ctx, m, stdout, logger)
}
