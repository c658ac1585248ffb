package manager

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
)

// TestSlowHeadersAreCut: a client that sends its headers slowly (slow
// loris) is disconnected after the read-header timeout.
func TestSlowHeadersAreCut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := HTTPServer(New(Config{Projection: fakeProjection{}, Commands: commands.New(nil, nil, nil), Log: fakeLog{}}), slog.New(slog.DiscardHandler))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := conn.Read(buf); err != nil {
			break // closed by the server
		}
	}
	if d := time.Since(start); d < 9*time.Second || d > 20*time.Second {
		t.Fatalf("connection closed after %v, want about the 10 s header timeout", d)
	}
}
