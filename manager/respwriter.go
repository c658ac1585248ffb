package manager

import (
	"net/http"
	"time"
)

// respWriter is the one wrapper of a response on its way out: the request
// metrics read its status, and whenReady gates its start (a rebuild begun
// since the request was let in turns the answer into a 503, and what the
// handler writes is dropped). One allocation for both, made by the
// metrics middleware: a poll's chain had four (BenchmarkInfoChain).
type respWriter struct {
	http.ResponseWriter
	status int // 0 until the answer starts
	// gate, set by whenReady, is checked as the answer starts.
	gate     *Server
	gen      uint64
	replaced bool
}

func (w *respWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if s := w.gate; s != nil && (s.rebuildCount() != w.gen || !s.isReady()) {
		w.replaced, w.status = true, http.StatusServiceUnavailable
		h := w.ResponseWriter.Header()
		for k := range h {
			delete(h, k) // the handler's ETag and length are not the 503's
		}
		s.notServing(w.ResponseWriter)
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush starts the answer (through the gate) and flushes it, for the
// streams (the audit export).
func (w *respWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.replaced {
		f.Flush()
	}
}

// Unwrap is for http.ResponseController (deadlines).
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// processStart is where monotonic counts from.
var processStart = time.Now()

// monotonic is the time since the process started, read from the monotonic
// clock alone: what the caches' lifetimes and a request's latency need.
// time.Now reads the wall clock too, at twice the cost, and a poll read
// it three times (BenchmarkInfoChain).
func monotonic() time.Duration { return time.Since(processStart) }
