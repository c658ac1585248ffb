package manager

import (
	"errors"
	"net"
	"net/http"
	"runtime/debug"
)

// Every answer of the manager is JSON, and none names an internal address
// or is empty: these are the answers net/http and chi would otherwise
// give in text (a panic's empty 500, a 431, a body that could not be
// read).

// recoverJSON answers a handler's panic with a JSON 500 and logs it with
// its stack (chi's Recoverer answered an empty 500).
func (s *Server) recoverJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p) // the handler asks net/http to abort the response
			}
			s.logger.Error("request panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			writeJSON(w, http.StatusInternalServerError, map[string]any{"message": "internal error (see the manager's log)"})
		}()
		next.ServeHTTP(w, r)
	})
}

// MaxHeaderBytes is the most header bytes a request may send: 431 (JSON)
// beyond it. The http.Server's own limit (HTTPServer) is higher, so that
// this check, not net/http's plain-text 431, answers all but absurd
// requests.
const MaxHeaderBytes = 64 << 10

// serverMaxHeaderBytes is net/http's limit: beyond it, it answers 431 in
// plain text before any handler runs.
const serverMaxHeaderBytes = 1 << 20

// limitHeaders answers 431 in JSON for requests whose headers are over
// MaxHeaderBytes.
func limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > MaxHeaderBytes {
			writeJSON(w, http.StatusRequestHeaderFieldsTooLarge, map[string]any{"message": "request headers over 65536 bytes"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bodyReadProblem says why a body could not be read, without the
// connection's addresses that the error itself holds.
func bodyReadProblem(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "the request body did not arrive in time"
	case errors.Is(err, http.ErrBodyReadAfterClose):
		return "the request body was closed"
	}
	return "the request body ended before its announced length, or could not be read"
}
