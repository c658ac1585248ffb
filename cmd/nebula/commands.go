//go:build !agent

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/nebula-orchestrator/nebula-go/internal/cli"
)

// subcommands are the programs of the whole build.
func subcommands() []command {
	return []command{
		{"dev", "run everything on this machine: embedded broker, manager, and a worker when Docker is reachable", runDev},
		{"manager", "run the manager (REST API, projections) against a Kafka cluster or the embedded broker", runManager},
		{"kafka", "run the embedded Kafka-protocol broker as its own process", runKafka},
		workerCommand,
		{"reporter", "run the reporter: device reports in, device events out (watermill consumer group)", runReporter},
		{"events", "the event history (via the manager); events export | events import | events verify (from Kafka)", runEvents},
		{"replay", "rebuild a projection as of an offset or a time (forensics)", runReplay},
		{"record-key", "record-key new FILE | public FILE: the key managers sign the event log's records with", runRecordKey},
		{"sim", "simulated devices (the real worker, an in-memory engine) against a manager", runSim},
		versionCommand(""),
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

// tampered is whether err is verify's finding of a log not as signed.
func tampered(err error) bool { return errors.Is(err, errTampered) }
