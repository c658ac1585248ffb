// Package loadgen drives HTTP GETs over a fixed number of keep-alive
// connections for a bounded time and measures throughput and latency.
// The benchmarks use it to compare servers under the same load.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config of one run.
type Config struct {
	URL string
	// Conns is the number of connections, each with one request in
	// flight at a time.
	Conns    int
	Duration time.Duration
	Header   http.Header
	// Want is the status every answer must have (200 if zero); other
	// answers count as errors.
	Want int
}

// Result of a run.
type Result struct {
	Conns          int
	Requests       int64
	Errors         int64
	Seconds        float64
	RPS            float64
	P50ms, P99ms   float64
	FirstErr       string `json:",omitempty"`
	ConnectSeconds float64
}

// Run opens the connections (their setup is not measured), then sends
// requests on all of them for Duration.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Conns < 1 || cfg.Duration <= 0 {
		return Result{}, errors.New("loadgen: need at least one connection and a positive duration")
	}
	if cfg.Want == 0 {
		cfg.Want = http.StatusOK
	}
	tr := &http.Transport{MaxConnsPerHost: cfg.Conns, MaxIdleConnsPerHost: cfg.Conns, MaxIdleConns: cfg.Conns,
		IdleConnTimeout: time.Minute, DisableCompression: true, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		return Result{}, err
	}
	for k, v := range cfg.Header {
		req.Header[k] = v
	}
	do := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != cfg.Want {
			err = fmt.Errorf("status %d, want %d", resp.StatusCode, cfg.Want)
		}
		return time.Since(start), err
	}

	// Connect: every connection makes one request, retried (a burst of
	// thousands of connects can overflow the listen backlog).
	connStart := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for range cfg.Conns {
		wg.Go(func() {
			for try := 0; ; try++ {
				_, err := do()
				if err == nil {
					return
				}
				if try == 20 || ctx.Err() != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	res := Result{Conns: cfg.Conns, ConnectSeconds: time.Since(connStart).Seconds()}
	if n := failed.Load(); n > 0 {
		return res, fmt.Errorf("loadgen: %d of %d connections failed: %v", n, cfg.Conns, firstErr.Load())
	}

	// Measure.
	var requests, errs atomic.Int64
	lat := make([][]time.Duration, cfg.Conns)
	deadline := time.Now().Add(cfg.Duration)
	start := time.Now()
	for i := range cfg.Conns {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				d, err := do()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				requests.Add(1)
				lat[i] = append(lat[i], d)
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Requests, res.Errors = requests.Load(), errs.Load()
	res.RPS = float64(res.Requests) / res.Seconds
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		res.P50ms = ms(all[len(all)/2])
		res.P99ms = ms(all[len(all)*99/100])
	}
	if e, ok := firstErr.Load().(string); ok {
		res.FirstErr = e
	}
	return res, ctx.Err()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
