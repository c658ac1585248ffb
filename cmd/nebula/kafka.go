//go:build !agent

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/nebula-orchestrator/nebula-go/internal/broker"
)

func runKafka(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var cfg broker.Config
	f := newFlags("kafka", "Runs the embedded Kafka-protocol broker (franz-go kfake) with its log in --data-dir.\n"+
		"Any Kafka client can use it; managers reach it with --kafka-brokers.", args)
	f.String(&cfg.Listen, "listen", "127.0.0.1:9092", "broker address host:port (an IP clients can reach; port 0 picks one)", "NEBULA_LISTEN")
	f.String(&cfg.DataDir, "data-dir", "nebula-data/kafka", "directory of the broker's log", "NEBULA_DATA_DIR")
	f.Bool(&cfg.SyncWrites, "sync-writes", false, "fsync every write (survives power loss, slower)", "NEBULA_KAFKA_SYNC_WRITES")
	f.String(&cfg.SASLUser, "sasl-user", "", "clients must authenticate as this user (SASL SCRAM-SHA-512); required when --listen is not a loopback address", "NEBULA_KAFKA_SASL_USER")
	f.String(&cfg.SASLPassword, "sasl-password", "", "its password, at least 12 characters (prefer the environment variable)", "NEBULA_KAFKA_SASL_PASSWORD")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	cfg.Logger = logger
	b, err := broker.Start(cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "nebula kafka: broker listening on %s (data in %s)\n", b.Addr(), cfg.DataDir)
	<-ctx.Done()
	fmt.Fprintln(stdout, "nebula kafka: stopping")
	return nil
}
