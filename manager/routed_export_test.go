package manager

import "net/http"

// Routed is the server's router alone: every request routed, a device's
// poll included (ServeHTTP serves polls without it).
func (s *Server) Routed() http.Handler { return s.router }

// Polled says whether ServeHTTP serves r without the router.
func Polled(r *http.Request) bool {
	_, ok := polled(r)
	return ok
}
