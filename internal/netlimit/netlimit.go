// Package netlimit is a listener for servers that must survive a flood:
// its Accept retries failed accepts (out of file descriptors) with
// backoff instead of returning the error, which ends most servers' accept
// loops for good, logs when accepting fails and when it works again, and
// holds at most a given number of connections at once.
package netlimit

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Listener caps and protects another listener's connections.
type Listener struct {
	net.Listener
	slots  chan struct{}
	logger *slog.Logger
	what   string
	// refuse is given each connection over the cap, which it must close.
	refuse  func(net.Conn)
	failing int // accept errors since the last connection accepted
	refused int // connections refused since the last one under the cap
}

// New wraps l: at most maxConns connections at once; refuse (nil: close
// it) is given each connection over the cap. what names the server in
// the log lines.
func New(l net.Listener, maxConns int, what string, refuse func(net.Conn), logger *slog.Logger) *Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if refuse == nil {
		refuse = func(c net.Conn) { c.Close() }
	}
	return &Listener{Listener: l, slots: make(chan struct{}, maxConns), logger: logger, what: what, refuse: refuse}
}

// Max is the cap.
func (l *Listener) Max() int { return cap(l.slots) }

// Accept returns the next connection under the cap; it returns an error
// only once the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		if err != nil {
			if l.failing++; l.failing == 1 {
				l.logger.Error(l.what+" cannot accept connections; retrying (said again when it works)", "err", err)
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		if l.failing > 0 {
			l.logger.Info(l.what+" accepts connections again", "failed_accepts", l.failing)
			l.failing = 0
		}
		select {
		case l.slots <- struct{}{}:
			if l.refused > 0 {
				l.logger.Info(l.what+": connections under the cap again", "refused", l.refused)
				l.refused = 0
			}
			return &conn{Conn: c, free: func() { <-l.slots }}, nil
		default:
			if l.refused++; l.refused == 1 {
				l.logger.Warn(l.what+": too many connections, new ones are refused (said again when under the cap)", "max", cap(l.slots))
			}
			l.refuse(c)
		}
	}
}

// conn gives its slot back once, when closed.
type conn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *conn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}
