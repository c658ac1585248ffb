package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

func runReporter(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var k kafkaFlags
	f := newFlags("reporter", "Runs the reporter: consumes device reports from the reports topic (consumer group "+reporter.ConsumerGroup+";\n"+
		"run several to share the partitions) and appends device events for the managers' report projections.", args)
	addKafkaFlags(f, &k)
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := k.config()
	if err != nil {
		return usageError{err}
	}
	return serveReporter(ctx, cfg, stdout, logger)
}

func serveReporter(ctx context.Context, cfg kafkalog.Config, stdout io.Writer, logger *slog.Logger) error {
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := reporter.EnsureTopics(tctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	r, err := reporter.New(cfg, logger)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-r.Running():
			fmt.Fprintf(stdout, "nebula reporter: consuming %s (group %s) on %v\n", reporter.ReportsTopic, reporter.ConsumerGroup, cfg.Brokers)
		case <-ctx.Done():
		}
	}()
	err = r.Run(ctx)
	fmt.Fprintln(stdout, "nebula reporter: stopped")
	return err
}
