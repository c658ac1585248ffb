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

	"github.com/nebula-orchestrator/nebula-go/worker"
	"github.com/nebula-orchestrator/nebula-go/worker/simengine"
)

// Config of a simulated fleet.
type Config struct {
	Devices        int
	Group          string
	Manager        string
	Token          string
	CheckIn        time.Duration
	ReportInterval time.Duration // 0: no reports
	// FullReportEvery: heartbeats between full reports (worker.Config).
	FullReportEvery time.Duration
	// StartSpread: devices start at random times within it.
	StartSpread time.Duration
	// NoLongPoll: plain polling every CheckIn (2.7's way); the fleet then
	// shares at most MaxConns connections (default 512).
	NoLongPoll bool
	MaxConns   int
	// Labels, when set, gives device i its labels.
	Labels func(i int) map[string]string
	Logger *slog.Logger
}

func labelsOf(cfg Config, i int) map[string]string {
	if cfg.Labels == nil {
		return nil
	}
	return cfg.Labels(i)
}

// Fleet is a running simulated fleet.
type Fleet struct {
	agents []*worker.Agent
	wg     sync.WaitGroup
	polls  *recorder
}

// recorder keeps the latency of the fleet's requests (until the answer's
// headers), at most maxSamples of them since the last Reset.
type recorder struct {
	base    http.RoundTripper
	mu      sync.Mutex
	samples []time.Duration
	count   int64
}

const maxSamples = 2_000_000

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		d := time.Since(start)
		r.mu.Lock()
		r.count++
		if len(r.samples) < maxSamples {
			r.samples = append(r.samples, d)
		}
		r.mu.Unlock()
	}
	return resp, err
}

// Requests returns the latencies of the requests answered since the last
// call (their count, and up to 2M samples), and starts over.
func (f *Fleet) Requests() (count int64, samples []time.Duration) {
	f.polls.mu.Lock()
	defer f.polls.mu.Unlock()
	count, samples = f.polls.count, f.polls.samples
	f.polls.count, f.polls.samples = 0, nil
	return count, samples
}

// Start starts the devices; they run until ctx ends (Wait waits).
func Start(ctx context.Context, cfg Config) *Fleet {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// One transport for the fleet: with long-poll every device holds a
	// connection open; plain polls share a bounded pool.
	tr := &http.Transport{MaxIdleConns: cfg.Devices + 16, MaxIdleConnsPerHost: cfg.Devices + 16, IdleConnTimeout: 5 * time.Minute,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	if cfg.NoLongPoll {
		if cfg.MaxConns <= 0 {
			cfg.MaxConns = 512
		}
		tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.MaxIdleConns = cfg.MaxConns, cfg.MaxConns, cfg.MaxConns
	}
	f := &Fleet{polls: &recorder{base: tr}}
	client := &http.Client{Transport: f.polls, Timeout: cfg.CheckIn + 30*time.Second}
	for i := range cfg.Devices {
		a := worker.NewAgent(worker.Config{Group: cfg.Group, Manager: cfg.Manager, Token: cfg.Token, CheckIn: cfg.CheckIn,
			RequestTimeout: 30 * time.Second, DeviceID: fmt.Sprintf("sim-%08d", i), Host: worker.Host{CPUs: 1, MemoryMB: 1024},
			ReportInterval: cfg.ReportInterval, FullReportEvery: cfg.FullReportEvery, HTTPClient: client, Logger: cfg.Logger, NoLongPoll: cfg.NoLongPoll, Labels: labelsOf(cfg, i)}, simengine.New())
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
