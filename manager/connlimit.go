package manager

import (
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/netlimit"
)

// A flood of connections must not take every file descriptor of the
// process: in `nebula dev` the embedded broker, Badger and the Kafka
// clients share them with the API, and 20,000 idle connections made the
// broker fail for good. LimitListener caps the API's connections; past the
// cap a new connection is answered 503 (JSON) and closed.

// DefaultMaxConnections is the cap when none is given: the process's file
// descriptor limit less ReservedFDs, and at least 256.
func DefaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 10_000
	}
	return max(256, int(lim.Cur)-ReservedFDs)
}

// ReservedFDs are the file descriptors left to everything but the API.
const ReservedFDs = 2048

var tooManyConnections = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n" +
	"Connection: close\r\nContent-Length: 66\r\n\r\n" + `{"message":"too many connections to this manager; retry shortly"}` + "\n")

// LimitListener wraps l so that at most max connections are open at once
// (past it a new one is answered 503 in JSON and closed); accept errors
// (out of file descriptors) are retried with backoff and logged when they
// start and end, instead of ending the server.
func LimitListener(l net.Listener, maxConns int, logger *slog.Logger) net.Listener {
	return netlimit.New(l, maxConns, "the API", func(c net.Conn) {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(tooManyConnections)
		c.Close()
	}, logger)
}
