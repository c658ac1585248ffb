//go:build !agent

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nebula-orchestrator/nebula-go/worker/sim"
)

func runSim(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var cfg sim.Config
	var duration time.Duration
	f := newFlags("sim", "Runs N simulated devices (the real worker over an in-memory engine) against a manager,\n"+
		"printing how many devices applied which device group version, for --duration.", args)
	f.Int(&cfg.Devices, "devices", 1000, "simulated devices", "NEBULA_SIM_DEVICES")
	f.String(&cfg.Group, "device-group", "", "their device group (required)", "DEVICE_GROUP")
	f.String(&cfg.Manager, "manager-uri", "http://127.0.0.1:5000", "manager base URL", "NEBULA_MANAGER_URI")
	f.String(&cfg.Token, "manager-auth-token", "", "Bearer token (needs ro on the group)", "NEBULA_MANAGER_AUTH_TOKEN")
	f.Duration(&cfg.CheckIn, "check-in", 30*time.Second, "check-in time (the longest long-poll)")
	f.Duration(&cfg.ReportInterval, "report-interval", 0, "reports every (0: none)")
	f.Duration(&cfg.StartSpread, "start-spread", 5*time.Second, "devices start at random times within this")
	longPoll := true
	f.Bool(&longPoll, "long-poll", true, "hold polls open until the config changes (false: poll every check-in, sharing --max-conns connections)")
	f.Int(&cfg.MaxConns, "max-conns", 512, "connections the fleet shares without long-poll")
	printEvery := 2 * time.Second
	f.Duration(&printEvery, "print-every", 2*time.Second, "how often to print the devices per version")
	f.Duration(&duration, "duration", time.Minute, "how long to run (bounded: at most an hour)")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	if cfg.Group == "" || cfg.Devices < 1 || cfg.Devices > 200_000 || duration <= 0 || duration > time.Hour || cfg.CheckIn <= 0 || printEvery < 10*time.Millisecond {
		return usageError{fmt.Errorf("give --device-group, 1 to 200000 --devices, a --duration up to 1h, a positive --check-in and --print-every of at least 10ms")}
	}
	cfg.Logger = logger
	cfg.NoLongPoll = !longPoll
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	fleet := sim.Start(ctx, cfg)
	fmt.Fprintf(stdout, "nebula sim: %d devices of group %s against %s for %v\n", cfg.Devices, cfg.Group, cfg.Manager, duration)
	t := time.NewTicker(printEvery)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			fleet.Wait()
			fmt.Fprintf(stdout, "nebula sim: done after %v: %s\n", time.Since(start).Round(time.Second), versions(fleet))
			return nil
		case <-t.C:
			// unix_ms lets a harness merge the lines of several sim processes.
			fmt.Fprintf(stdout, "t=%v unix_ms=%d %s\n", time.Since(start).Round(time.Millisecond), time.Now().UnixMilli(), versions(fleet))
		}
	}
}

func versions(f *sim.Fleet) string {
	v := f.Versions()
	keys := make([]int64, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("version %d: %d", k, v[k]))
	}
	return strings.Join(parts, ", ")
}
