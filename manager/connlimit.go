package manager

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
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

// LimitListener wraps l so that at most max connections are open at once;
// accept errors (out of file descriptors) are retried with backoff and
// logged when they start and end, instead of ending the server.
func LimitListener(l net.Listener, maxConns int, logger *slog.Logger) net.Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: l, slots: make(chan struct{}, maxConns), logger: logger}
}

type limitListener struct {
	net.Listener
	slots   chan struct{}
	logger  *slog.Logger
	failing int
	refused int
}

func (l *limitListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		if err != nil {
			if l.failing++; l.failing == 1 {
				l.logger.Error("the API cannot accept connections; retrying (said again when it works)", "err", err)
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		if l.failing > 0 {
			l.logger.Info("the API accepts connections again", "failed_accepts", l.failing)
			l.failing = 0
		}
		select {
		case l.slots <- struct{}{}:
			if l.refused > 0 {
				l.logger.Info("connections under the cap again", "refused", l.refused)
				l.refused = 0
			}
			return &limitedConn{Conn: c, free: func() { <-l.slots }}, nil
		default:
			if l.refused++; l.refused == 1 {
				l.logger.Warn("too many connections: new ones are answered 503 (said again when under the cap)", "max", cap(l.slots))
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(tooManyConnections)
			c.Close()
		}
	}
}

type limitedConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}
