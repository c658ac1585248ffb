package manager_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// unauthenticated are the only routes that answer without credentials:
// with the console's sign-in form and the files its pages load.
var unauthenticated = map[string]bool{"GET /metrics": true, "GET /healthz": true, "GET /ui/login": true, "POST /ui/login": true}

// consoleOpen are the console's files, which every page loads (its style
// and script), signed in or not.
const consoleOpen = "/ui/static/"

// TestEveryRouteNeedsAuth walks the router: every route, every method,
// answers 401 without credentials and with bad ones, unless listed above
// (2.7 had no unauthenticated route, but cached /info in front of auth).
// The console's pages send a visitor without a session to the sign-in
// page (an API credential is no session).
func TestEveryRouteNeedsAuth(t *testing.T) {
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b := testenv.StartBroker(t, t.TempDir())
	// Enough failed logins for the walk (TestFailedLoginsAreLimited
	// tests the limit).
	m := testmanager.StartWithLimits(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "route-walk-token"},
		manager.Limits{FailedAuthBurst: 10_000})
	srv := manager.New(manager.Config{Commands: commands.New(nil, nil, nil)}) // the same routes, to walk
	routes := 0
	err := chi.Walk(srv.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes++
		path := strings.ReplaceAll(strings.TrimSuffix(route, "/"), "{name}", "x")
		key := method + " " + path
		for _, auth := range []string{"", "Bearer wrong-token", "Basic d3Jvbmc6d3Jvbmc="} {
			req, _ := http.NewRequest(method, m.URL+path, strings.NewReader(`{}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if strings.HasPrefix(path, consoleOpen) {
				continue
			}
			if strings.HasPrefix(path, "/ui") && !unauthenticated[key] {
				if resp.StatusCode != http.StatusUnauthorized && (resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login") {
					t.Errorf("%s with %q: %d (to %q), want 401 or a redirect to sign in", key, auth, resp.StatusCode, resp.Header.Get("Location"))
				}
				continue
			}
			if unauthenticated[key] {
				if resp.StatusCode == http.StatusUnauthorized {
					t.Errorf("%s: 401, but it is meant to be open", key)
				}
				continue
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with %q: %d, want 401", key, auth, resp.StatusCode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes < 50 {
		t.Fatalf("walked only %d routes", routes)
	}
}
