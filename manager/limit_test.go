package manager_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// TestFailedLoginsAreLimited: wrong credentials from one address spend
// its budget; past it every request from there gets 429 with Retry-After
// (even with good credentials: a guesser learns nothing), until it
// refills. Requests without credentials (401) and other addresses (behind
// a trusted proxy, by X-Forwarded-For) are not affected.
func TestFailedLoginsAreLimited(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.StartWithLimits(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "limits-admin-token"},
		manager.Limits{FailedAuthBurst: 5, FailedAuthEvery: time.Second, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	apps := m.URL + "/api/v2/apps"
	good := []string{"Authorization", "Bearer limits-admin-token"}
	for range 30 {
		if r := call(t, "GET", apps, nil); r.status != 401 {
			t.Fatalf("no credentials: %d", r.status)
		}
	}
	for i := range 5 {
		if r := call(t, "GET", apps, nil, "Authorization", "Bearer wrong-token", "X-Forwarded-For", "203.0.113.7"); r.status != 401 {
			t.Fatalf("wrong token %d: %d", i, r.status)
		}
	}
	r := call(t, "GET", apps, nil, "Authorization", "Bearer wrong-token", "X-Forwarded-For", "203.0.113.7")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("6th wrong token: %d %v", r.status, r.header)
	}
	if r := call(t, "GET", apps, nil, append(good, "X-Forwarded-For", "203.0.113.7")...); r.status != 429 {
		t.Fatalf("good token from the blocked address: %d", r.status)
	}
	// Another client behind the same proxy, and a forged hop in front
	// of it (the proxy appends the real one last), are not blocked.
	if r := call(t, "GET", apps, nil, append(good, "X-Forwarded-For", "203.0.113.7, 198.51.100.2")...); r.status != 200 {
		t.Fatalf("another client: %d", r.status)
	}
	time.Sleep(1100 * time.Millisecond) // one failed login refilled
	if r := call(t, "GET", apps, nil, append(good, "X-Forwarded-For", "203.0.113.7")...); r.status != 200 {
		t.Fatalf("after the refill: %d", r.status)
	}
}

// TestRequestRateLimit: with --rate-limit, one credential's requests past
// the budget get 429; another credential keeps its own.
func TestRequestRateLimit(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.StartWithLimits(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "limits-admin-token"},
		manager.Limits{RequestsPerSecond: 5})
	admin := []string{"Authorization", "Bearer limits-admin-token"}
	if r := call(t, "POST", m.URL+"/api/v2/users/dev1", `{"password": "dev1-password"}`, admin...); r.status != 200 {
		t.Fatalf("create user: %d %s", r.status, r.raw)
	}
	limited := 0
	for range 30 {
		switch r := call(t, "GET", m.URL+"/api/v2/apps", nil, admin...); r.status {
		case 200:
		case 429:
			limited++
		default:
			t.Fatalf("status %d", r.status)
		}
	}
	if limited < 15 {
		t.Fatalf("%d of 30 requests at once limited with a budget of 5/s (burst 10)", limited)
	}
	if r := call(t, "GET", m.URL+"/api/v2/status", nil, basic("dev1", "dev1-password")...); r.status != 200 {
		t.Fatalf("another credential: %d", r.status)
	}
}
