// Command nebula is every Nebula program in one binary: the embedded
// development setup, the manager, the worker, the reporter, the embedded
// Kafka broker, and (later) the operator CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error
}

func subcommands() []command {
	return []command{
		{"dev", "run everything on this machine: embedded broker, manager, and a worker when Docker is reachable", runDev},
		{"manager", "run the manager (REST API, projections) against a Kafka cluster or the embedded broker", runManager},
		{"kafka", "run the embedded Kafka-protocol broker as its own process", runKafka},
		{"worker", "run the device agent: poll the device group's config, reconcile the local Docker engine", runWorker},
		{"reporter", "run the reporter: device reports in, device events out (watermill consumer group)", runReporter},
		{"events", "events export: the decoded event log as JSON lines", runEvents},
		{"replay", "rebuild a projection as of an offset or a time (forensics)", runReplay},
		{"version", "print the version", func(_ context.Context, _ []string, w io.Writer, _ *slog.Logger) error {
			_, err := fmt.Fprintln(w, "nebula", version)
			return err
		}},
	}
}

func notYet(name string, issue int) func(context.Context, []string, io.Writer, *slog.Logger) error {
	return func(context.Context, []string, io.Writer, *slog.Logger) error {
		return fmt.Errorf("nebula %s is not implemented yet (tracked in issue %d)", name, issue)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: nebula <command> [flags]\n\ncommands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'nebula <command> -h' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes scripts can rely on.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	for _, c := range subcommands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout, logger.With("cmd", c.name))
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errTampered):
			return exitError
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "nebula %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "nebula %s: %v\n", c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "nebula: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// usageError marks a bad flag, environment variable or configuration.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("NEBULA_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
