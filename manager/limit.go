package manager

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what one client can do. The zero value: failed logins
// limited with the defaults below, requests not limited.
type Limits struct {
	// FailedAuthBurst failed logins from one client address are allowed
	// at once, then one per FailedAuthEvery; past that the client gets 429
	// until the budget refills (guessing passwords and tokens).
	FailedAuthBurst int
	FailedAuthEvery time.Duration
	// RequestsPerSecond per credential (the token, the user, or the
	// address without credentials), with a burst of twice that; 0: no
	// limit. Devices sharing a token share its budget: size it for the
	// fleet (a device polls once per check-in).
	RequestsPerSecond float64
	// TrustedProxies: requests from these networks (a load balancer) are
	// attributed to the last address in X-Forwarded-For they did not add.
	TrustedProxies []netip.Prefix
}

// Defaults of the failed-login limit.
const (
	DefaultFailedAuthBurst = 20
	DefaultFailedAuthEvery = 3 * time.Second
	// limiterKeys bounds the memory of a limiter: past it the idlest
	// client is forgotten (it starts again with a full budget).
	limiterKeys = 100_000
)

// bucket is a token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// limiter is a token bucket per key, bounded in keys.
type limiter struct {
	size    atomic.Int64 // len(buckets), read without the lock
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*bucket
	now     func() time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, buckets: map[string]*bucket{}, now: time.Now}
}

// take spends one token of key; when there is none it says how long
// until there is.
func (l *limiter) take(key string) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.refill(key, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// empty says whether key has no token left, without spending one.
func (l *limiter) empty(key string) (bool, time.Duration) {
	if l.size.Load() == 0 {
		return false, 0 // nobody failed: no lock on every request
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return false, 0
	}
	b = l.refill(key, l.now())
	if b.tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (l *limiter) refill(key string, now time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= limiterKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
		l.size.Store(int64(len(l.buckets)))
		return b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	return b
}

// evict forgets the buckets that are full again, or else the idlest.
func (l *limiter) evict(now time.Time) {
	var idlest string
	var idleAt time.Time
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if idlest == "" || b.at.Before(idleAt) {
			idlest, idleAt = k, b.at
		}
	}
	if len(l.buckets) >= limiterKeys {
		delete(l.buckets, idlest)
	}
	l.size.Store(int64(len(l.buckets)))
}

// clientAddr is the address a request is attributed to.
func (lim Limits) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(lim.TrustedProxies) == 0 {
		return host
	}
	trusted := func(s string) bool {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		for _, p := range lim.TrustedProxies {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	if !trusted(host) {
		return host
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		if h := strings.TrimSpace(hops[i]); h != "" && !trusted(h) {
			if _, err := netip.ParseAddr(h); err == nil {
				return h
			}
			return host // a forged or garbled header: the proxy is the client
		}
	}
	return host
}

func tooMany(w http.ResponseWriter, retry time.Duration, what string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)+1))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": what})
}
