//go:build agent

package main

// subcommands of the device agent's build: the worker alone.
func subcommands() []command {
	return []command{workerCommand, versionCommand(" (agent)")}
}

// cliCommands: the operator CLI is not in the agent's build.
func cliCommands() []command { return nil }

func tampered(error) bool { return false }
