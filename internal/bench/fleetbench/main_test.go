package fleetbench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	nebulamanager "github.com/nebula-orchestrator/nebula-go/manager"
)

const token = "fleetbench-admin-token"

// TestMain doubles as the bare Go server of the /info comparison (this
// test binary re-executed), so that it has its own process and files.
func TestMain(m *testing.M) {
	if file := os.Getenv("FLEETBENCH_BARE_FILE"); file != "" {
		serveBare(file, os.Getenv("FLEETBENCH_BARE_ETAG"))
		return
	}
	os.Exit(m.Run())
}

// serveBare answers every GET with the file's bytes (or 304 for its
// ETag): the least a Go HTTP server can do for /info, in net/http as the
// manager configures it (manager.HTTPServer: the read, write and idle
// timeouts a server facing devices needs; without them net/http served
// about 6% more 304s under wrk, which no deployed server should get).
func serveBare(file, etag string) {
	body, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("bare server on %s\n", ln.Addr())
	_ = nebulamanager.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), slog.New(slog.DiscardHandler)).Serve(ln)
}

// startSelf runs this test binary as a helper process and returns the
// first output line matching re.
func startSelf(tb testing.TB, env []string, re *regexp.Regexp) []string {
	tb.Helper()
	return testenv.StartProgram(tb, os.Args[0], env, nil, "-test.run", "^$").WaitLine(tb, re, 30*time.Second)
}

// manager is `nebula manager` in its own process, on an embedded broker
// (`nebula kafka`) in another, so that the manager's CPU and memory are
// its own.
type manager struct {
	url, kafka, pprof string
	pid               int
}

func startManager(tb testing.TB, extraEnv ...string) manager {
	tb.Helper()
	kp := testenv.Start(tb, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", tb.TempDir())
	kafka := kp.WaitLine(tb, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
	p := testenv.Start(tb, append([]string{"AUTH_TOKEN=" + token}, extraEnv...), "manager", "--kafka-brokers", kafka,
		"--data-dir", tb.TempDir(), "--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0")
	pprof := p.WaitLine(tb, regexp.MustCompile(`profiler on (http://\S+)/debug/pprof/`), 60*time.Second)[1]
	url := p.WaitLine(tb, regexp.MustCompile(`API on (http://\S+)/api/v2 `), 60*time.Second)[1]
	p.WaitLine(tb, regexp.MustCompile(`nebula manager: ready`), 60*time.Second)
	return manager{url: url, kafka: kafka, pprof: pprof, pid: p.Cmd.Process.Pid}
}

// profile saves the manager's profile kind (e.g. "heap", or
// "profile?seconds=10" for CPU) as NEBULA_BENCH_OUT/profiles/name: the
// evidence behind the profile-guided fixes (go tool pprof reads it).
func (m manager) profile(tb testing.TB, kind, name string) {
	tb.Helper()
	dir := os.Getenv("NEBULA_BENCH_OUT")
	if dir == "" {
		return
	}
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Get(m.pprof + "/debug/pprof/" + kind)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := os.MkdirAll(filepath.Join(dir, "profiles"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "profiles", name), b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// call makes an authenticated API request and checks its status.
func call(tb testing.TB, method, url, body string, want int) (http.Header, []byte) {
	tb.Helper()
	status, h, b := request(tb, method, url, body)
	if status != want {
		tb.Fatalf("%s %s: %d %s, want %d", method, url, status, bytes.TrimSpace(b), want)
	}
	return h, b
}

// request sends a request as the admin, with headers (name, value, ...),
// and returns the answer.
func request(tb testing.TB, method, url, body string, headers ...string) (int, http.Header, []byte) {
	tb.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}
