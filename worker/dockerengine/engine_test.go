package dockerengine

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/worker"
	"github.com/nebula-orchestrator/nebula-go/worker/enginetest"
)

// TestCreateRequest checks what Create sends to the Engine API, for the
// options a sandboxed engine refuses to run (privileged): a server
// speaking the API records the requests.
func TestCreateRequest(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	var created map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		path := r.URL.Path[strings.Index(r.URL.Path[1:], "/")+1:] // drop the /v1.xx prefix
		if r.URL.Path == "/_ping" {
			path = "/_ping"
		}
		paths = append(paths, r.Method+" "+path)
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case path == "/_ping":
			_, _ = w.Write([]byte("OK"))
		case path == "/containers/create":
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &created)
			if r.URL.Query().Get("name") != "web-2" {
				t.Errorf("create name %q", r.URL.Query().Get("name"))
			}
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"Id":"abc","Warnings":[]}`))
		default:
			w.WriteHeader(204)
		}
	}))
	defer srv.Close()
	e, err := New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	spec := worker.ContainerSpec{Name: "web-2", App: "web", Index: 2, Image: "registry.local/web:1", Env: []string{"A=1"},
		Ports: []worker.PortBinding{{Host: 8081, Container: 80}}, Binds: []string{"/data:/data:ro"}, Devices: []string{"/dev/ttyUSB0"},
		Privileged: true, Network: "nebula", Extra: []string{"backend"}, RestartPolicy: "unless-stopped"}
	if err := e.Create(context.Background(), spec, map[string]string{"app_name": "web"}); err != nil {
		t.Fatal(err)
	}
	hc := created["HostConfig"].(map[string]any)
	if hc["Privileged"] != true || hc["NetworkMode"] != "nebula" || hc["RestartPolicy"].(map[string]any)["Name"] != "unless-stopped" {
		t.Fatalf("host config %v", hc)
	}
	if pb := hc["PortBindings"].(map[string]any)["80/tcp"].([]any)[0].(map[string]any); pb["HostPort"] != "8081" {
		t.Fatalf("port bindings %v", hc["PortBindings"])
	}
	if d := hc["Devices"].([]any)[0].(map[string]any); d["PathOnHost"] != "/dev/ttyUSB0" || d["PathInContainer"] != "/dev/ttyUSB0" || d["CgroupPermissions"] != "rwm" {
		t.Fatalf("devices %v", hc["Devices"])
	}
	want := []string{"POST /containers/create", "POST /networks/backend/connect", "POST /containers/abc/start"}
	got := strings.Join(paths, ",")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("requests %v lack %s", paths, w)
		}
	}
}

// TestConformance: the Docker adapter, against the real daemon, passes the
// suite the simulated engine passes.
func TestConformance(t *testing.T) {
	image := testenv.TestImage(t, "nebula-testapp:conformance", false)
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.StopTimeout = 1
	enginetest.Run(t, e, image, func(network string) { testenv.Docker(t, "network", "rm", network) })
}
