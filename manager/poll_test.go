package manager_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// TestPollUnroutedAnswersAsRouted: ServeHTTP serves a device's poll
// without the router; every answer of it (200, 304, gzip, 400, 401, 403,
// a past config) is the router's to the byte, headers included, and the
// request metrics label it with its route. Polls in other forms (escaped,
// a trailing slash, HEAD) go to the router.
func TestPollUnroutedAnswersAsRouted(t *testing.T) {
	m := launch(t, testenv.StartBroker(t, t.TempDir()).Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "poll-admin-token"})
	srv := m.Handler.(*manager.Server)
	api := m.URL + "/api/v2"
	admin := []string{"Authorization", "Bearer poll-admin-token"}
	call(t, "POST", api+"/apps/web", `{"docker_image": "registry.local/web:1"}`, admin...).expect(t, 200, nil)
	for _, g := range []string{"edge", "other"} {
		call(t, "POST", api+"/device_groups/"+g, `{"apps": ["web"]}`, admin...).expect(t, 200, nil)
	}
	user := call(t, "POST", api+"/users/device", `{"password": "device-password"}`, admin...)
	user.expect(t, 200, nil)
	token, _ := user.body["token"].(string)
	call(t, "POST", api+"/user_groups/devices", `{"group_members": ["device"], "device_groups": {"edge": "ro"}}`, admin...).expect(t, 200, nil)
	etag := call(t, "GET", api+"/device_groups/edge/info", nil, "Authorization", "Bearer "+token).header.Get("ETag")

	bearer := "Bearer " + token
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("device:device-password"))
	for _, tc := range []struct {
		name, method, target string
		header               []string
		status               int
		unrouted             bool
	}{
		{"200 bearer", "GET", "/api/v2/device_groups/edge/info", []string{"Authorization", bearer}, 200, true},
		{"200 basic", "GET", "/api/v2/device_groups/edge/info", []string{"Authorization", basic}, 200, true},
		{"gzip", "GET", "/api/v2/device_groups/edge/info", []string{"Authorization", bearer, "Accept-Encoding", "gzip"}, 200, true},
		{"304", "GET", "/api/v2/device_groups/edge/info", []string{"Authorization", bearer, "If-None-Match", etag}, 304, true},
		{"labels", "GET", "/api/v2/device_groups/edge/info", []string{"Authorization", bearer, manager.DeviceIDHeader, "dev-1", manager.DeviceLabelsHeader, "site=a"}, 200, true},
		{"bad labels", "GET", "/api/v2/device_groups/edge/info", []string{"Authorization", bearer, manager.DeviceLabelsHeader, "=="}, 400, true},
		{"bad wait", "GET", "/api/v2/device_groups/edge/info?wait=forever", []string{"Authorization", bearer}, 400, true},
		{"past", "GET", "/api/v2/device_groups/edge/info?at=3", []string{"Authorization", bearer}, 200, true},
		{"no credentials", "GET", "/api/v2/device_groups/edge/info", nil, 401, true},
		{"wrong token", "GET", "/api/v2/device_groups/edge/info", []string{"Authorization", "Bearer nope"}, 401, true},
		{"another group", "GET", "/api/v2/device_groups/other/info", []string{"Authorization", bearer}, 403, true},
		{"no such group", "GET", "/api/v2/device_groups/nope/info", admin, 403, true},
		{"escaped", "GET", "/api/v2/device_groups/ed%67e/info", []string{"Authorization", bearer}, 403, false},
		{"trailing slash", "GET", "/api/v2/device_groups/edge/info/", []string{"Authorization", bearer}, 404, false},
		{"nested", "GET", "/api/v2/device_groups/a/b/info", []string{"Authorization", bearer}, 404, false},
		{"empty name", "GET", "/api/v2/device_groups//info", []string{"Authorization", bearer}, 403, false},
		{"HEAD", "HEAD", "/api/v2/device_groups/edge/info", []string{"Authorization", bearer}, 405, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := manager.Polled(httptest.NewRequest(tc.method, tc.target, nil)); got != tc.unrouted {
				t.Errorf("served unrouted: %v, want %v", got, tc.unrouted)
			}
			answer := func(h http.Handler) *httptest.ResponseRecorder {
				req := httptest.NewRequest(tc.method, tc.target, nil)
				for i := 0; i+1 < len(tc.header); i += 2 {
					req.Header.Set(tc.header[i], tc.header[i+1])
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			got, want := answer(srv), answer(srv.Routed())
			if got.Code != tc.status || want.Code != tc.status {
				t.Fatalf("status %d, routed %d, want %d: %s", got.Code, want.Code, tc.status, got.Body)
			}
			if got.Body.String() != want.Body.String() {
				t.Errorf("body %q, routed %q", got.Body, want.Body)
			}
			for _, h := range []http.Header{got.Header(), want.Header()} {
				h.Del("Date")
			}
			if g, w := headerText(got.Header()), headerText(want.Header()); g != w {
				t.Errorf("headers\n%s\nrouted\n%s", g, w)
			}
		})
	}
	// Under an outer mux, whose pattern ("/") the request carries, a
	// request is still labelled with its route.
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	status, rec := httptest.NewRequest("GET", "/api/v2/status", nil), httptest.NewRecorder()
	status.Header.Set(admin[0], admin[1])
	if mux.ServeHTTP(rec, status); rec.Code != 200 {
		t.Fatalf("status under a mux: %d %s", rec.Code, rec.Body)
	}
	metrics := call(t, "GET", m.URL+"/metrics", nil)
	if strings.Contains(string(metrics.raw), `route="/"`) {
		t.Errorf("a request under an outer mux is labelled with the mux's pattern:\n%s", metrics.raw)
	}
	for _, want := range []string{
		`nebula_http_requests_total{method="GET",route="/api/v2/status",code="200"}`,
		`nebula_http_requests_total{method="GET",route="/api/v2/device_groups/{name}/info",code="200"}`,
		`nebula_http_requests_total{method="GET",route="/api/v2/device_groups/{name}/info",code="304"}`,
		`nebula_http_requests_total{method="GET",route="/api/v2/device_groups/{name}/info",code="401"}`,
	} {
		if !strings.Contains(string(metrics.raw), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics.raw)
		}
	}
}

func headerText(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b)
	return b.String()
}

// TestRequestHeaderKeysAreCanonical: requestHeader looks a request's
// header up by key as net/http stores it, so every key the manager reads
// with it must already be canonical: each call in the package's source.
func TestRequestHeaderKeysAreCanonical(t *testing.T) {
	consts := map[string]string{"DeviceIDHeader": manager.DeviceIDHeader, "DeviceLabelsHeader": manager.DeviceLabelsHeader}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`requestHeader\(r, ([^)]+)\)`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			n++
			k, err := strconv.Unquote(m[1])
			if err != nil {
				var known bool
				if k, known = consts[m[1]]; !known {
					t.Errorf("%s: requestHeader(r, %s): a key this test cannot check (a string literal, or add the constant here)", f, m[1])
					continue
				}
			}
			if c := http.CanonicalHeaderKey(k); c != k {
				t.Errorf("%s: header key %q is stored by net/http as %q: requestHeader would never find it", f, k, c)
			}
		}
	}
	if n < 5 {
		t.Fatalf("found %d calls of requestHeader: the pattern no longer matches the source", n)
	}
}
