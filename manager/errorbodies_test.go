package manager

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// panickyProjection panics on every read, as a damaged store's reader did.
type panickyProjection struct{ fakeProjection }

func (panickyProjection) View(func(projections.Reader) error) error {
	panic("slice bounds out of range")
}

// TestErrorBodiesAreJSON (finding 10): a body that arrives too slowly,
// headers over the limit and a handler's panic are answered in JSON, with
// no socket address and never an empty body.
func TestErrorBodiesAreJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := HTTPServer(New(Config{Projection: panickyProjection{}, Commands: commands.New(nil, nil, nil), Log: fakeLog{}}), slog.New(slog.DiscardHandler))
	srv.ReadTimeout = time.Second // HTTPServer's is 30 s: the same path, sooner
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()

	exchange := func(req string) (int, http.Header, string) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	check := func(what string, code, want int, h http.Header, body string) {
		t.Helper()
		var m map[string]any
		if code != want || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &m) != nil || m["message"] == nil {
			t.Fatalf("%s: %d %q %s, want %d with a JSON message", what, code, h.Get("Content-Type"), body, want)
		}
		if strings.Contains(body, "127.0.0.1") || strings.Contains(body, addr) {
			t.Fatalf("%s: the answer names a socket address: %s", what, body)
		}
	}

	// A body announced but sent too slowly.
	code, h, body := exchange("POST /api/v2/apps/web HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"docker")
	check("slow body", code, http.StatusBadRequest, h, body)

	// Headers over the limit.
	code, h, body = exchange("GET /api/v2/apps HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n")
	check("big headers", code, http.StatusRequestHeaderFieldsTooLarge, h, body)

	// A handler that panics.
	code, h, body = exchange("GET /api/v2/apps HTTP/1.1\r\nHost: x\r\n\r\n")
	check("panic", code, http.StatusInternalServerError, h, body)
}
