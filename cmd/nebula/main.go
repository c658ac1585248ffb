// Command nebula is every Nebula program in one binary: the embedded
// development setup, the manager, the worker, the reporter, the embedded
// Kafka broker, and the operator CLI (apps, device groups, cron jobs,
// users, history, verify, export).
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

	"github.com/nebula-orchestrator/nebula-go/internal/cli"
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
		{"events", "the event history (via the manager); events export | events import | events verify (from Kafka)", runEvents},
		{"replay", "rebuild a projection as of an offset or a time (forensics)", runReplay},
		{"record-key", "record-key new FILE | public FILE: the key managers sign the event log's records with", runRecordKey},
		{"sim", "simulated devices (the real worker, an in-memory engine) against a manager", runSim},
		{"version", "print the version", func(_ context.Context, _ []string, w io.Writer, _ *slog.Logger) error {
			_, err := fmt.Fprintln(w, "nebula", version)
			return err
		}},
	}
}

// cliCommands are the operator verbs (internal/cli): login, ping, apps,
// device-groups, ... ("events" is shared with export and verify).
func cliCommands() []command {
	summaries := map[string]string{"login": "save the manager's address and credentials (~/.nebula.json)", "logout": "forget them",
		"ping": "check the manager answers", "apps": "list|info|create|update|delete|start|stop|restart apps",
		"device-groups": "list|info|create|update|delete|rollout device groups", "cron-jobs": "list|info|create|update|delete cron jobs",
		"users": "list|info|create|update|refresh|delete users", "user-groups": "list|info|create|update|delete user groups",
		"prune": "prune all | prune device-group NAME", "reports": "device reports (2.7's filters)", "devices": "the device inventory",
		"history": "history APP: the app's versions and changes", "revert": "revert app|device-group|cron-job NAME --to OFFSET",
		"rollout": "rollout GROUP: devices converged, pending, failed, silent", "completion": "completion bash|zsh"}
	var out []command
	for _, v := range cli.Verbs {
		if v == "events" {
			continue
		}
		out = append(out, command{v, summaries[v], func(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
			return cliRun(ctx, append([]string{v}, args...), stdout)
		}})
	}
	return out
}

// cliRun runs a CLI verb; its exit code travels as exitCodeError.
func cliRun(ctx context.Context, args []string, stdout io.Writer) error {
	home, _ := os.UserHomeDir()
	if code := cli.Run(ctx, args, cli.Env{Getenv: os.Getenv, Home: home, Stdout: stdout, Stderr: os.Stderr}); code != 0 {
		return exitCodeError(code)
	}
	return nil
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
		case errors.Is(err, errTampered):
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
