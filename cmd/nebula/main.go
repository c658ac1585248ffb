// Command nebula is every Nebula program in one binary: the embedded
// development setup, the manager, the worker, the reporter, the embedded
// Kafka broker, and the operator CLI (apps, device groups, cron jobs,
// users, history, verify, export).
//
// Built with -tags agent (make agent: bin/nebula-agent), it is the device
// agent alone: `worker` and `version`, without the manager, the broker
// and the CLI linked in (a smaller binary, less memory on the device).
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

// workerCommand is in every build.
var workerCommand = command{"worker", "run the device agent: poll the device group's config, reconcile the local Docker engine", runWorker}

// versionCommand prints the version, and which build this is (note).
func versionCommand(note string) command {
	return command{"version", "print the version", func(_ context.Context, _ []string, w io.Writer, _ *slog.Logger) error {
		_, err := fmt.Fprintln(w, "nebula", version+note)
		return err
	}}
}

// exitCodeError is an exit code already explained on stderr.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: nebula <command> [flags]\n\ncommands:")
	for _, c := range append(subcommands(), cliCommands()...) {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
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
	for _, c := range append(subcommands(), cliCommands()...) {
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
		case tampered(err):
			return exitError
		case errors.As(err, new(exitCodeError)):
			var code exitCodeError
			errors.As(err, &code)
			return int(code)
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
