//go:build !agent

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
	var r reportsFlags
	f := newFlags("reporter", "Runs the reporter: consumes device reports from the reports topic (in a consumer group;\n"+
		"run several to share the partitions) and appends device events for the managers' report projections.", args)
	addKafkaFlags(f, &k)
	addReportsTopicFlag(f, &r)
	addReporterFlags(f, &r)
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := k.config()
	if err != nil {
		return usageError{err}
	}
	names, err := r.config()
	if err != nil {
		return usageError{err}
	}
	return serveReporter(ctx, cfg, names, stdout, logger)
}

func serveReporter(ctx context.Context, cfg kafkalog.Config, names reporter.Names, stdout io.Writer, logger *slog.Logger) error {
	names = names.WithDefaults()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := reporter.EnsureTopics(tctx, cfg, names)
	cancel()
	if err != nil {
		return err
	}
	r, err := reporter.New(cfg, names, logger)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-r.Running():
			fmt.Fprintf(stdout, "nebula reporter: consuming %s (group %s) on %v\n", names.Reports, names.Group, cfg.Brokers)
		case <-ctx.Done():
		}
	}()
	err = r.Run(ctx)
	fmt.Fprintln(stdout, "nebula reporter: stopped")
	return err
}
