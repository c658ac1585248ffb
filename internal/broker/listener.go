package broker

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// kfake's broker returns from its accept loop on the first Accept error
// (out of file descriptors, for instance) and never accepts again: the
// manager in the same process then answers every write with 503 until it
// is restarted. The broker is given this listener instead, whose Accept
// retries with backoff until the listener is closed, and logs when
// accepting fails and when it works again.

// DefaultMaxConnections is how many connections the embedded broker
// holds at most; past it, a new connection is closed at once.
const DefaultMaxConnections = 1024

type resilientListener struct {
	net.Listener
	logger *slog.Logger
	slots  chan struct{}
	// Accept errors since the last connection accepted.
	failing int
	// sleep waits between retries (tests shorten it).
	sleep func(time.Duration)
}

func newResilientListener(l net.Listener, maxConns int, logger *slog.Logger) *resilientListener {
	return &resilientListener{Listener: l, logger: logger, slots: make(chan struct{}, maxConns), sleep: time.Sleep}
}

func (l *resilientListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil, err // Close: the broker is stopping
		}
		if err != nil {
			if l.failing++; l.failing == 1 {
				l.logger.Error("the embedded broker cannot accept connections; retrying (said again when it works)", "err", err)
			}
			l.sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		if l.failing > 0 {
			l.logger.Info("the embedded broker accepts connections again", "failed_accepts", l.failing)
			l.failing = 0
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
		default:
			// Over the cap: close it, so that a flood of connections
			// cannot take every file descriptor of the process.
			c.Close()
		}
	}
}

// slotConn gives its slot back once, when closed.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}
