package manager

import (
	"mime"
	"net/http"
)

// CSRF posture. The API is for programs (the SDK, the CLI, workers), not
// for pages: it has no cookies, and a browser holding Basic credentials
// for the manager must not be usable by another site to change anything.
// So a request that changes something (any method but GET, HEAD and
// OPTIONS):
//
//   - with a body, must say Content-Type: application/json (415 otherwise),
//     as 2.7 did (Flask refused other types). An HTML form cannot send that
//     type, and a script of another origin can only send it after a CORS
//     preflight, which the manager never answers with an allow;
//   - with any Content-Type, must say application/json (the SDK sends it on
//     every request, bodies or not);
//   - sent by a browser on behalf of another site (Sec-Fetch-Site
//     cross-site or same-site, or an Origin that is not this host) is
//     refused with 403, which also covers a body-less POST (stop, restart)
//     a page could send without a preflight.
//
// Programs send neither Sec-Fetch-Site nor Origin, so they are not
// affected.
func (s *Server) jsonMutations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if crossSite(r) {
			writeJSON(w, http.StatusForbidden, map[string]any{"access_allowed": false,
				"message": "a request from another site's page may not change anything"})
			return
		}
		ct := r.Header.Get("Content-Type")
		if ct == "" && r.ContentLength == 0 {
			next.ServeHTTP(w, r) // no body: a POST of stop, start, restart, prune, revert
			return
		}
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{
				"message": "a request that changes something must send Content-Type: application/json", "content_type": ct})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossSite says whether a browser sends r for a page of another site.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin") // "null" from a sandboxed page or a file: cross-site too
	return origin != "" && origin != "http://"+r.Host && origin != "https://"+r.Host
}
