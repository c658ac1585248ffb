package manager

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzSessionCookie: a session cookie's value, whatever it holds, never
// panics the reader, and only a value the manager signed (with its key)
// reads as a session; a signed one reads back as signed, and one signed
// by another key or changed in any byte does not.
func FuzzSessionCookie(f *testing.F) {
	s := &Server{consoleKey: consoleKey(nil)}
	other := &Server{consoleKey: consoleKey(nil)}
	good := s.newSession("ops", 42)
	f.Add(good.raw)
	f.Add(other.newSession("ops", 42).raw)
	f.Add("b3Bz.42.9999999999.00")
	f.Add("...")
	f.Add(strings.Repeat(".", 100))
	f.Fuzz(func(t *testing.T, value string) {
		r, _ := http.NewRequest("GET", "/ui/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: value})
		se, ok := s.readSession(r)
		if ok && value != good.raw {
			// Only values signed with s's key read as sessions.
			if se.raw != value || s.newSessionAt(se) != value {
				t.Fatalf("%q read as a session of %q", value, se.name)
			}
		}
		if value == good.raw && (!ok || se.name != "ops" || se.version != 42 || !se.expires.After(time.Now())) {
			t.Fatalf("the manager's own session did not read back: %+v %v", se, ok)
		}
	})
}

// newSessionAt signs se's fields as newSession does, with se's expiry.
func (s *Server) newSessionAt(se session) string {
	parts := strings.Split(se.raw, ".")
	body := strings.Join(parts[:3], ".")
	return body + "." + s.mac("session", body)
}
