// Package sim runs simulated devices: the real worker (poll, plan,
// report) over an in-memory engine, many in one process (nebula sim).
package sim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/simengine"
	"github.com/nebula-orchestrator/nebula-go/worker"
)

// Config of a simulated fleet.
type Config struct {
	Devices        int
	Group          string
	Manager        string
	Token          string
	CheckIn        time.Duration
	ReportInterval time.Duration // 0: no reports
	// StartSpread: devices start at random times within it.
	StartSpread time.Duration
	Logger      *slog.Logger
}

// Fleet is a running simulated fleet.
type Fleet struct {
	agents []*worker.Agent
	wg     sync.WaitGroup
}

// Start starts the devices; they run until ctx ends (Wait waits).
func Start(ctx context.Context, cfg Config) *Fleet {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// One transport for the fleet: every device holds a long-poll open.
	tr := &http.Transport{MaxIdleConns: cfg.Devices + 16, MaxIdleConnsPerHost: cfg.Devices + 16, IdleConnTimeout: 5 * time.Minute,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	client := &http.Client{Transport: tr, Timeout: cfg.CheckIn + 30*time.Second}
	f := &Fleet{}
	for i := range cfg.Devices {
		a := worker.NewAgent(worker.Config{Group: cfg.Group, Manager: cfg.Manager, Token: cfg.Token, CheckIn: cfg.CheckIn,
			RequestTimeout: 30 * time.Second, DeviceID: fmt.Sprintf("sim-%08d", i), Host: worker.Host{CPUs: 1, MemoryMB: 1024},
			ReportInterval: cfg.ReportInterval, HTTPClient: client, Logger: cfg.Logger}, simengine.New())
		f.agents = append(f.agents, a)
		f.wg.Go(func() {
			if cfg.StartSpread > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(rand.N(cfg.StartSpread)):
				}
			}
			_ = a.Run(ctx)
		})
	}
	go func() { <-ctx.Done(); f.wg.Wait(); tr.CloseIdleConnections() }()
	return f
}

// Wait waits for every device to stop (after ctx ends).
func (f *Fleet) Wait() { f.wg.Wait() }

// AtVersion counts the devices that applied version v or later.
func (f *Fleet) AtVersion(v int64) int {
	n := 0
	for _, a := range f.agents {
		if a.AppliedVersion() >= v {
			n++
		}
	}
	return n
}

// Versions counts devices by applied version.
func (f *Fleet) Versions() map[int64]int {
	out := map[int64]int{}
	for _, a := range f.agents {
		out[a.AppliedVersion()]++
	}
	return out
}
