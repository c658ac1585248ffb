//go:build agent

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// subcommands of the device agent's build: the worker alone.
func subcommands() []command {
	return []command{
		{"worker", "run the device agent: poll the device group's config, reconcile the local Docker engine", runWorker},
		{"version", "print the version", func(_ context.Context, _ []string, w io.Writer, _ *slog.Logger) error {
			_, err := fmt.Fprintln(w, "nebula", version, "(agent)")
			return err
		}},
	}
}

// cliCommands: the operator CLI is not in the agent's build.
func cliCommands() []command { return nil }

func tampered(error) bool { return false }
