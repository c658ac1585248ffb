package manager

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/past"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// The web console (issue 19), at /ui/ on the API's listener: pages
// rendered on the server with html/template from files embedded in the
// binary, a little plain JavaScript (no inline script: the
// Content-Security-Policy forbids it) for the parts that update live.
// It signs in with the API's credentials and keeps the user in a session
// cookie (HttpOnly, SameSite=Strict, Secure over TLS) signed by the
// manager's console key; every form carries a CSRF token bound to the
// session; every page checks the same permissions as the API.

//go:embed ui
var consoleFiles embed.FS

var consolePages = template.Must(template.New("").Funcs(template.FuncMap{
	"list": func(v ...string) []string { return v },
	"next": func(i int) int { return i + 1 },
	"json": func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			return "?"
		}
		return string(b)
	},
	"pct": func(n, of int) string {
		if of == 0 {
			return "0"
		}
		return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64)
	},
}).ParseFS(consoleFiles, "ui/*.html"))

// Console sessions.
const (
	sessionCookie  = "nebula_session"
	loginCookie    = "nebula_login" // the sign-in form's CSRF nonce
	sessionMaxAge  = 12 * time.Hour
	consoleCSP     = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	consoleRefresh = 2 * time.Second // how often live parts ask again
)

// consoleKey signs sessions and CSRF tokens: Config.ConsoleKey (the same
// on every manager of a cluster, so that a session works behind a load
// balancer), or a random key of this process.
func consoleKey(k []byte) []byte {
	if len(k) > 0 {
		return k
	}
	k = make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func (s *Server) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.consoleKey)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// session is a signed-in user: name, the version of its user document
// (a changed password or a deleted user ends the session) and expiry.
type session struct {
	name    string
	version int64
	expires time.Time
	raw     string // the cookie's value
}

func (s *Server) newSession(name string, version int64) session {
	exp := time.Now().Add(sessionMaxAge).Truncate(time.Second)
	body := base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + strconv.FormatInt(version, 10) + "." + strconv.FormatInt(exp.Unix(), 10)
	return session{name: name, version: version, expires: exp, raw: body + "." + s.mac("session", body)}
}

func (s *Server) readSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return session{}, false
	}
	body := strings.Join(parts[:3], ".")
	if !hmac.Equal([]byte(parts[3]), []byte(s.mac("session", body))) {
		return session{}, false
	}
	name, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	version, err2 := strconv.ParseInt(parts[1], 10, 64)
	exp, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || time.Now().After(time.Unix(exp, 0)) {
		return session{}, false
	}
	return session{name: string(name), version: version, expires: time.Unix(exp, 0), raw: c.Value}, true
}

// csrf is the token a session's forms carry.
func (s *Server) csrf(se session) string { return s.mac("csrf", se.raw) }

// consoleUser is the identity behind a session, as the API would see the
// same user now (nil: signed out, or the user changed or is gone).
func (s *Server) consoleUser(r *http.Request) (*identity, session) {
	se, ok := s.readSession(r)
	if !ok {
		return nil, se
	}
	if se.name == s.localSession() {
		return &identity{name: localAdmin, local: true}, se
	}
	var version int64
	id, _, err := s.auth.user(func(pr projections.Reader) (projections.User, bool, error) {
		u, found, err := pr.User(se.name)
		version = u.Version
		return u, found, err
	}, "")
	if err != nil || id == nil || version != se.version {
		return nil, se
	}
	return id, se
}

const localAdmin = "local-admin"

// localSession is the name a local admin's session carries: not a user's
// name (those cannot hold a NUL, and a user may be called "local-admin"),
// and bound to the local admin's credentials, so that changing them ends
// its sessions.
func (s *Server) localSession() string {
	a := s.auth.cfg
	return "\x00" + localAdmin + "\x00" + s.mac("local admin", strconv.FormatBool(a.Enabled), a.User, a.Password, a.Token)[:16]
}

func secureCookie(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// consoleRoutes mounts the console.
func (s *Server) consoleRoutes(r chi.Router) {
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", consoleCSP)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cache-Control", "no-store")
			next.ServeHTTP(w, r)
		})
	})
	static, _ := fs.Sub(consoleFiles, "ui/static")
	r.Handle("/static/*", http.StripPrefix("/ui/static/", http.FileServer(http.FS(static))))
	r.Get("/login", s.consoleLoginPage)
	r.Post("/login", s.consoleLogin)
	r.Post("/logout", s.signedIn(s.consoleLogout))
	page := func(path string, h consoleHandler) { r.Get(path, s.signedIn(h)) }
	post := func(path string, h consoleHandler) { r.Post(path, s.signedIn(h)) }
	form := func(path string, h consoleHandler) { page(path, h); post(path, h) } // shown, then posted
	page("/", s.consoleFleet)
	page("/events", s.consoleEvents)
	page("/devices/{id}", s.consoleDevice)
	page("/groups/{name}", s.consoleGroup)
	page("/groups/{name}/versions", s.consoleGroupVersions)
	page("/groups/{name}/status", s.consoleGroupStatus)
	page("/groups/{name}/stream", s.consoleGroupStream)
	post("/groups/{name}/rollout/{decision}", s.consoleDecide)
	page("/apps/{name}", s.consoleApp)
	post("/apps/{name}/{action}", s.consoleAppAction)
	page("/cron_jobs/{name}", s.consoleCronJob)
	for _, k := range []struct {
		kind events.Kind
		path string
	}{{events.KindApp, "/apps/{name}"}, {events.KindDeviceGroup, "/groups/{name}"}, {events.KindCronJob, "/cron_jobs/{name}"}} {
		form(k.path+"/revert", s.consoleRevert(k.kind))
		if k.kind != events.KindDeviceGroup {
			page(k.path+"/diff", s.consoleDiff(k.kind))
		}
	}
	form("/apps/new", s.consoleNewApp)
	form("/groups/new", s.consoleNewGroup)
	form("/cron_jobs/new", s.consoleNewCronJob)
	form("/user_groups/new", s.consoleNewUserGroup)
	form("/apps/{name}/edit", s.consoleEditApp)
	form("/groups/{name}/edit", s.consoleEditGroup)
	form("/cron_jobs/{name}/edit", s.consoleEditCronJob)
	form("/user_groups/{name}/edit", s.consoleEditUserGroup)
	page("/users", s.consoleUsers)
	post("/users/new", s.consoleNewUser)
	post("/users/{name}/{action}", s.consoleUserAction)
	post("/user_groups/{name}/delete", s.consoleDeleteUserGroup)
}

type consoleHandler func(w http.ResponseWriter, r *http.Request, id *identity, se session)

// signedIn runs h for a signed-in user; others go to the sign-in page (a
// page) or get 401 (a live update). Every POST must carry the session's
// CSRF token.
func (s *Server) signedIn(h consoleHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, se := s.consoleUser(r)
		if id == nil {
			if strings.HasSuffix(r.URL.Path, "/status") || strings.HasSuffix(r.URL.Path, "/stream") {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "signed out"})
				return
			}
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf(se))) {
			s.consoleError(w, http.StatusForbidden, "This form has expired or did not come from this console. Reload the page and try again.")
			return
		}
		h(w, r, id, se)
	}
}

func (s *Server) render(w http.ResponseWriter, status int, page string, data map[string]any) {
	var b bytes.Buffer
	if err := consolePages.ExecuteTemplate(&b, page, data); err != nil {
		s.logger.Error("console page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) consoleError(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error.html", map[string]any{"Title": http.StatusText(status), "Message": msg})
}

func (s *Server) consoleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.loginForm(w, r, http.StatusOK, "")
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, status int, problem string) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	n := hex.EncodeToString(nonce)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: n, Path: "/ui/login", HttpOnly: true, Secure: secureCookie(r),
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	s.render(w, status, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.mac("login", n), "Problem": problem})
}

// consoleLogin checks the credentials as the API does (a user and its
// password, or a token alone), counting failures against the address
// like the API's.
func (s *Server) consoleLogin(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.mac("login", c.Value))) {
		s.loginForm(w, r, http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	addr := s.limits.clientAddr(r)
	if blocked, retry := s.failedAuth.empty(addr); blocked {
		s.loginForm(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from this address; try again in "+retry.Round(time.Second).String()+".")
		return
	}
	user, password := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")
	probe, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil)
	if user == "" {
		probe.Header.Set("Authorization", "Bearer "+password)
	} else {
		probe.SetBasicAuth(user, password)
	}
	id, _, err := s.auth.authenticate(probe)
	if err != nil {
		s.loginForm(w, r, http.StatusServiceUnavailable, "The manager cannot check credentials now: "+err.Error())
		return
	}
	if id == nil || password == "" {
		s.failedAuth.take(addr)
		s.loginForm(w, r, http.StatusUnauthorized, "Wrong user name or password (or token).")
		return
	}
	name, version := s.localSession(), int64(-1)
	if !id.local {
		name = id.name
		_ = s.proj.View(func(pr projections.Reader) error {
			u, _, err := pr.User(id.name)
			version = u.Version
			return err
		})
	}
	se := s.newSession(name, version)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: se.raw, Path: "/ui/", HttpOnly: true, Secure: secureCookie(r),
		SameSite: http.SameSiteStrictMode, Expires: se.expires})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/ui/login", MaxAge: -1})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (s *Server) consoleLogout(w http.ResponseWriter, r *http.Request, _ *identity, _ session) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// page is what every page's frame shows.
func (s *Server) page(r *http.Request, id *identity, se session, title string) map[string]any {
	applied := s.proj.Applied()
	lag := int64(-1)
	if s.log != nil {
		if _, end, err := s.log.Bounds(r.Context()); err == nil {
			lag = max(end-1-applied, 0)
		}
	}
	return map[string]any{"Title": title, "User": id.name, "Admin": id.local || id.admin, "CSRF": s.csrf(se), "Applied": applied, "Lag": lag,
		"CatchingUp": s.serving != nil && !s.serving()}
}

// groupRow is a device group on the fleet page.
type groupRow struct {
	Name     string
	Version  int64
	Apps     int
	CronJobs int
	Devices  int
	Counts   map[string]int
	Rollout  string
}

// failingNow is a failing device on the fleet page.
type failingNow struct {
	Group  string
	Device reports.Device
}

// fleetRows reads the device groups id may read, from pr (the present,
// or the past).
func fleetRows(pr projections.Reader, id *identity) ([]groupRow, error) {
	rows := []groupRow{}
	names, err := pr.Names(events.KindDeviceGroup)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if !id.can(events.KindDeviceGroup, n, events.PermRO) {
			continue
		}
		g, found, err := pr.DeviceGroup(n)
		if err != nil || !found {
			return nil, err
		}
		row := groupRow{Name: n, Version: g.Version, Apps: len(g.Apps), CronJobs: len(g.CronJobs)}
		if ro, has, err := pr.Rollout(n); err != nil {
			return nil, err
		} else if has {
			row.Rollout = ro.State
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// consoleFleet is the fleet page: now, or ?at= an offset or a time (the
// groups as they were; their devices have no past).
func (s *Server) consoleFleet(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	if at := r.URL.Query().Get("at"); at != "" {
		off, ok := s.consoleOffset(w, r, at)
		if !ok {
			return
		}
		var rows []groupRow
		err := s.past.ViewAt(r.Context(), off, func(pr projections.Reader) error {
			var err error
			rows, err = fleetRows(pr, id)
			return err
		})
		if err != nil {
			s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
			return
		}
		data := s.page(r, id, se, "Fleet as of "+strconv.FormatInt(off, 10))
		data["Groups"], data["At"], data["Past"] = rows, off, true
		s.render(w, http.StatusOK, "fleet.html", data)
		return
	}
	var rows []groupRow
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		rows, err = fleetRows(pr, id)
		return err
	})
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	failing := []failingNow{}
	if s.reports != nil {
		now := time.Now()
		for i, row := range rows {
			limit := max(behindList-len(failing), 0)
			st, err := s.reports.Standing(row.Name, row.Version, now, DefaultSilentAfter, limit)
			if err != nil {
				s.consoleError(w, http.StatusServiceUnavailable, "The report store cannot be read now: "+err.Error())
				return
			}
			rows[i].Devices, rows[i].Counts = st.Devices, st.Counts
			for _, d := range st.Behind { // failed first
				if reports.StatusOf(d, row.Version, now, DefaultSilentAfter) == RolloutFailed {
					failing = append(failing, failingNow{row.Name, d})
				}
			}
		}
	}
	data := s.page(r, id, se, "Fleet")
	data["Groups"] = rows
	data["Failing"] = failing
	s.render(w, http.StatusOK, "fleet.html", data)
}

// standing is where a group's devices stand against its version.
type standing struct {
	Version   int64                  `json:"device_group_id"`
	Devices   int                    `json:"devices"`
	Counts    map[string]int         `json:"counts"`
	Slowest   []deviceBehind         `json:"slowest"`
	Rollout   string                 `json:"rollout,omitempty"`
	Decisions []projections.Decision `json:"decisions,omitempty"`
	Wave      int                    `json:"wave,omitempty"`
	Waves     int                    `json:"waves,omitempty"`
	Complete  bool                   `json:"reports_complete"`
	NextMs    int64                  `json:"next_ms"` // when a page asks again
	CheckedAt time.Time              `json:"checked_at"`
}

var errNoGroup = errors.New("no such device group")

// groupStanding reads a group, its info and where its devices stand.
func (s *Server) groupStanding(name string) (projections.Info, standing, error) {
	var info projections.Info
	st := standing{CheckedAt: time.Now().UTC(), NextMs: consoleRefresh.Milliseconds()}
	var found bool
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		if info, found, err = pr.Info(name); err != nil || !found {
			return err
		}
		if ro, has, err := pr.Rollout(name); err != nil {
			return err
		} else if has && ro.State != projections.RolloutCompleted {
			st.Rollout, st.Wave, st.Waves, st.Decisions = ro.State, ro.Wave+1, len(ro.Policy.Waves), ro.Decisions
		}
		return nil
	})
	if err == nil && !found {
		err = errNoGroup
	}
	if err != nil {
		return info, st, err
	}
	st.Version = info.DeviceGroupID
	st.Counts = map[string]int{RolloutConverged: 0, RolloutPending: 0, RolloutFailed: 0, RolloutSilent: 0}
	st.Slowest = []deviceBehind{}
	if s.reports == nil {
		return info, st, nil
	}
	rs, slow, err := s.standingOf(name, info.DeviceGroupID, time.Now(), DefaultSilentAfter)
	if err != nil {
		return info, st, err
	}
	catchingUp, _ := s.reports.CatchingUp()
	st.Devices, st.Counts, st.Slowest, st.Complete = rs.Devices, rs.Counts, slow, !catchingUp
	return info, st, nil
}

func (s *Server) consoleGroup(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	if !id.can(events.KindDeviceGroup, name, events.PermRO) {
		s.consoleError(w, http.StatusForbidden, "You may not read device group "+name+".")
		return
	}
	if at := r.URL.Query().Get("at"); at != "" {
		s.consoleGroupAt(w, r, id, se, name, at)
		return
	}
	info, st, err := s.groupStanding(name)
	if errors.Is(err, errNoGroup) {
		s.consoleError(w, http.StatusNotFound, "There is no device group "+name+".")
		return
	}
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	data := s.page(r, id, se, "Device group "+name)
	data["Group"], data["Info"], data["Standing"] = name, info, st
	data["CanWrite"] = id.can(events.KindDeviceGroup, name, events.PermRW)
	data["Refresh"] = max(consoleRefresh.Milliseconds(), st.NextMs)
	if s.reports != nil {
		// Its devices, a page at a time (in ID order, from the group index).
		after := r.URL.Query().Get("after")
		devs, full, err := s.reports.Devices(reports.DeviceQuery{Group: name, After: after, Limit: devicesPage})
		if err != nil {
			s.consoleError(w, http.StatusServiceUnavailable, "The reports cannot be read now: "+err.Error())
			return
		}
		rows := make([]deviceBehind, 0, len(devs))
		now := time.Now()
		for _, d := range devs {
			rows = append(rows, deviceBehind{d.DeviceID, d.Hostname, reports.StatusOf(d, info.DeviceGroupID, now, DefaultSilentAfter), d.AppliedVersion, d.LastSeen, d.Errors})
		}
		data["Devices"], data["DevicesAfter"] = rows, after
		if full {
			data["DevicesNext"] = devs[len(devs)-1].DeviceID
		}
	}
	s.render(w, http.StatusOK, "group.html", data)
}

// consoleGroupStatus is the live part of a group's page (console.js asks
// for it every consoleRefresh).
// devicesPage is how many devices a group's page lists at a time.
const devicesPage = 50

// streamFor is how long one stream of a group's standing lasts: under
// the listener's write timeout, as a long-poll; the browser's EventSource
// then opens the next one.
const streamFor = 90 * time.Second

// consoleGroupStream sends where a group's devices stand as Server-Sent
// Events, every consoleRefresh, while the session stays good: each event
// is what /status answers. A session that ends (signed out, user changed)
// gets an "signedout" event, a group deleted a "gone" one.
func (s *Server) consoleGroupStream(w http.ResponseWriter, r *http.Request, id *identity, _ session) {
	name := chi.URLParam(r, "name")
	if !id.can(events.KindDeviceGroup, name, events.PermRO) {
		writeJSON(w, http.StatusForbidden, map[string]any{"access_allowed": false})
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy passes each event on
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", consoleRefresh.Milliseconds())
	tick := time.NewTicker(consoleRefresh)
	defer tick.Stop()
	end := time.After(streamFor)
	for {
		if now, _ := s.consoleUser(r); now == nil || !now.can(events.KindDeviceGroup, name, events.PermRO) {
			fmt.Fprint(w, "event: signedout\ndata: {}\n\n")
			_ = rc.Flush()
			return
		}
		_, st, err := s.groupStanding(name)
		switch {
		case errors.Is(err, errNoGroup):
			fmt.Fprint(w, "event: gone\ndata: {}\n\n")
			_ = rc.Flush()
			return
		case err != nil:
			s.logger.Warn("a console stream could not read a group's standing", "group", name, "err", err)
		default:
			b, _ := json.Marshal(st)
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
	}
}

func (s *Server) consoleGroupStatus(w http.ResponseWriter, r *http.Request, id *identity, _ session) {
	name := chi.URLParam(r, "name")
	if !id.can(events.KindDeviceGroup, name, events.PermRO) {
		writeJSON(w, http.StatusForbidden, map[string]any{"access_allowed": false})
		return
	}
	_, st, err := s.groupStanding(name)
	if errors.Is(err, errNoGroup) {
		writeJSON(w, http.StatusNotFound, map[string]any{existsKey(events.KindDeviceGroup): false})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// consoleDevice is a device's page: what it reports and its story (the
// versions it applied, what made each, the rollout that brought it).
func (s *Server) consoleDevice(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	devID := chi.URLParam(r, "id")
	if s.reports == nil {
		s.consoleError(w, http.StatusServiceUnavailable, "Reporting is not configured on this manager.")
		return
	}
	dev, found, err := s.reports.Device(devID)
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The reports cannot be read now: "+err.Error())
		return
	}
	if !found || !id.can(events.KindDeviceGroup, dev.DeviceGroup, events.PermRO) {
		s.consoleError(w, http.StatusNotFound, "No device "+devID+" that you may read has reported.")
		return
	}
	applied, _, err := s.reports.AppliedVersions(devID, "", historyMaxLimit)
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The reports cannot be read now: "+err.Error())
		return
	}
	var steps []storyStep
	var groupVersion int64
	err = s.proj.View(func(pr projections.Reader) error {
		if g, found, err := pr.DeviceGroup(dev.DeviceGroup); err != nil {
			return err
		} else if found {
			groupVersion = g.Version
		}
		pr, done := pr.Reusing()
		defer done()
		for i := len(applied) - 1; i >= 0; i-- { // newest first
			st, err := storyOf(pr, applied[i], dev)
			if err != nil {
				return err
			}
			steps = append(steps, st)
		}
		return nil
	})
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	recent, err := s.reports.RecentReports(dev.Hostname, 10)
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The reports cannot be read now: "+err.Error())
		return
	}
	data := s.page(r, id, se, "Device "+devID)
	data["Device"], data["GroupVersion"], data["Story"], data["Reports"] = dev, groupVersion, steps, recent
	data["Status"] = reports.StatusOf(dev, groupVersion, time.Now(), DefaultSilentAfter)
	s.render(w, http.StatusOK, "device.html", data)
}

// consoleApp is an app's page: its spec now and its versions, each with
// what it changed.
func (s *Server) consoleApp(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	if !id.can(events.KindApp, name, events.PermRO) {
		s.consoleError(w, http.StatusForbidden, "You may not read app "+name+".")
		return
	}
	var app projections.App
	var found bool
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		app, found, err = pr.App(name)
		return err
	})
	var versions []past.AppVersion
	next := int64(-1)
	if err == nil && s.past != nil {
		from := int64(0)
		if v, perr := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64); perr == nil && v >= 0 {
			from = v
		}
		versions, next, err = s.past.AppVersions(r.Context(), name, from, 100)
	}
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	if !found && len(versions) == 0 {
		s.consoleError(w, http.StatusNotFound, "There is no app "+name+", and there never was.")
		return
	}
	data := s.page(r, id, se, "App "+name)
	data["Name"], data["App"], data["Exists"], data["Versions"], data["Next"] = name, app, found, versions, next
	data["CanWrite"], data["Path"] = id.can(events.KindApp, name, events.PermRW), "/ui/apps/"
	s.render(w, http.StatusOK, "app.html", data)
}

// consoleEvents is the audit timeline (admins, as GET /events): filtered
// by kind, name, actor and type, a page at a time, each event with its
// verdict.
func (s *Server) consoleEvents(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	if !id.local && !id.admin {
		s.consoleError(w, http.StatusForbidden, "The event log is for admins.")
		return
	}
	if s.events == nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The event log is not configured on this manager.")
		return
	}
	q := r.URL.Query()
	f := eventFilter{kind: q.Get("kind"), name: q.Get("name"), typ: q.Get("type"), actor: q.Get("actor"), to: -1}
	from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
	if !validKind(f.kind) {
		s.consoleError(w, http.StatusBadRequest, kindChoices)
		return
	}
	for _, t := range []struct {
		key string
		at  *time.Time
	}{{"since", &f.since}, {"until", &f.until}} {
		if v := q.Get(t.key); v != "" {
			var err error
			if *t.at, err = time.Parse(time.RFC3339, v); err != nil {
				s.consoleError(w, http.StatusBadRequest, t.key+": an RFC 3339 time (2026-11-24T14:00:00Z).")
				return
			}
		}
	}
	s.caughtUp(r.Context())
	// As of an offset or a time: the events up to it, the chain as it was.
	applied := s.proj.Applied()
	if at := q.Get("at"); at != "" {
		off, ok := s.consoleOffset(w, r, at)
		if !ok {
			return
		}
		f.to, applied = off, off
	}
	start, err := s.sinceOffset(r.Context(), f, max(from, 0))
	var out []eventView
	next := int64(-1)
	if err == nil {
		out, next, err = s.eventsPage(r.Context(), f, start, 100)
	}
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The event log cannot be read now: "+err.Error())
		return
	}
	data := s.page(r, id, se, "Events")
	// The hash chain's state, and the last checkpoint the fold accepted
	// (as of then: one after it is not shown).
	_ = s.proj.View(func(pr projections.Reader) error {
		if head, found, err := pr.Chain(applied); err == nil && found {
			data["ChainAt"], data["ChainHead"] = applied, hex.EncodeToString(head)
		}
		if cp, found, err := pr.LastCheckpoint(); err == nil && found && cp.Offset <= applied {
			data["Checkpoint"] = cp
		}
		return nil
	})
	filter := map[string]string{"kind": f.kind, "name": f.name, "type": f.typ, "actor": f.actor, "since": q.Get("since"), "until": q.Get("until"), "at": q.Get("at")}
	data["Events"], data["Filter"] = out, filter
	if next >= 0 {
		nq := url.Values{}
		for k, v := range filter {
			if v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("from", strconv.FormatInt(next, 10))
		data["NextQuery"] = nq.Encode()
	}
	s.render(w, http.StatusOK, "events.html", data)
}

// consoleDecide takes a decision by hand on a group's rollout (a form on
// the group's page, for users who may change the group), then shows the
// page again.
func (s *Server) consoleDecide(w http.ResponseWriter, r *http.Request, id *identity, _ session) {
	group, decision := chi.URLParam(r, "name"), chi.URLParam(r, "decision")
	switch decision {
	case events.DecisionPromote, events.DecisionPause, events.DecisionResume, events.DecisionAbort:
	default:
		s.consoleError(w, http.StatusNotFound, "There is no rollout decision "+decision+".")
		return
	}
	if !id.can(events.KindDeviceGroup, group, events.PermRW) {
		s.consoleError(w, http.StatusForbidden, "You may not change device group "+group+".")
		return
	}
	d, groupFound, found, err := s.handDecision(r.Context(), group, decision, "")
	switch {
	case err != nil:
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	case !groupFound || !found:
		s.consoleError(w, http.StatusConflict, "Device group "+group+" has no rollout.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	d.Reason = "by " + id.name + " (console)"
	if _, err := s.cmds.DecideRollout(ctx, commands.Meta{Actor: id.name}, group, d); err != nil {
		s.consoleError(w, http.StatusConflict, "The decision was not taken: "+err.Error())
		return
	}
	http.Redirect(w, r, "/ui/groups/"+url.PathEscape(group), http.StatusSeeOther)
}

// consoleGroupAt is a group's page as of an offset or a time (?at=): its
// config as /info served it then, read from the projection's versions.
// Devices have no past here: their part is left out.
// consoleOffset reads an "as of" (an offset or an RFC 3339 time) as an
// offset this manager has folded; ok=false: the answer is written.
func (s *Server) consoleOffset(w http.ResponseWriter, r *http.Request, at string) (int64, bool) {
	if s.past == nil {
		s.consoleError(w, http.StatusServiceUnavailable, "Time travel is not configured on this manager.")
		return 0, false
	}
	off, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		t, terr := time.Parse(time.RFC3339, at)
		if terr != nil {
			s.consoleError(w, http.StatusBadRequest, "As of: an offset (0 or more) or an RFC 3339 time (2026-11-24T14:00:00Z).")
			return 0, false
		}
		s.caughtUp(r.Context())
		if off, err = s.past.OffsetAt(r.Context(), t); err != nil {
			s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
			return 0, false
		}
	}
	if off < 0 || off > s.proj.Applied() {
		s.consoleError(w, http.StatusBadRequest, fmt.Sprintf("As of: offset %d is not in the log this manager has folded (0 to %d).", off, s.proj.Applied()))
		return 0, false
	}
	return off, true
}

func (s *Server) consoleGroupAt(w http.ResponseWriter, r *http.Request, id *identity, se session, name, at string) {
	off, ok := s.consoleOffset(w, r, at)
	if !ok {
		return
	}
	var info projections.Info
	var found bool
	err := s.past.ViewAt(r.Context(), off, func(pr projections.Reader) error {
		var err error
		info, found, err = pr.Info(name)
		return err
	})
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	data := s.page(r, id, se, "Device group "+name)
	data["Group"], data["Info"], data["At"], data["Existed"] = name, info, off, found
	s.render(w, http.StatusOK, "group_at.html", data)
}

// consoleAppAction starts, stops or restarts an app (a form on its page).
func (s *Server) consoleAppAction(w http.ResponseWriter, r *http.Request, id *identity, _ session) {
	name, action := chi.URLParam(r, "name"), chi.URLParam(r, "action")
	run := map[string]func(context.Context, commands.Meta, string) (projections.App, error){
		"start": s.cmds.StartApp, "stop": s.cmds.StopApp, "restart": s.cmds.RestartApp,
	}[action]
	if run == nil {
		s.consoleError(w, http.StatusNotFound, "An app cannot be told to "+action+".")
		return
	}
	if !id.can(events.KindApp, name, events.PermRW) {
		s.consoleError(w, http.StatusForbidden, "You may not change app "+name+".")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	if _, err := run(ctx, commands.Meta{Actor: id.name}, name); err != nil {
		s.consoleError(w, http.StatusConflict, "App "+name+" was not told to "+action+": "+err.Error())
		return
	}
	http.Redirect(w, r, "/ui/apps/"+url.PathEscape(name), http.StatusSeeOther)
}

// fieldChange is a field a change would make different.
type fieldChange struct {
	Field    string
	From, To string // JSON
}

// fieldChanges are the fields of two documents' JSON that differ.
func fieldChanges(before, after any) []fieldChange {
	var a, b map[string]json.RawMessage
	ja, _ := json.Marshal(before)
	jb, _ := json.Marshal(after)
	_ = json.Unmarshal(ja, &a)
	_ = json.Unmarshal(jb, &b)
	var out []fieldChange
	for k, v := range b {
		if !bytes.Equal(a[k], v) {
			out = append(out, fieldChange{k, string(a[k]), string(v)})
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			out = append(out, fieldChange{k, string(v), ""})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// consoleRevert reverts an object of kind to one of its versions: GET shows what the
// revert would change and which device groups (with how many devices) it
// would reach, from a dry run; POST (the preview's button) does it.
func (s *Server) consoleRevert(kind events.Kind) consoleHandler {
	return func(w http.ResponseWriter, r *http.Request, id *identity, se session) {
		s.revertFlow(w, r, id, se, s.consoleKind(kind))
	}
}

// consoleKind is how the console reads and reverts one kind of object.
type consoleKind struct {
	kind        events.Kind
	what, path  string // "app", "/ui/apps/"
	read        func(projections.Reader, string) (any, bool, error)
	revert      func(ctx context.Context, m commands.Meta, name string, to int64) (any, error)
	versionless func(any) any // the document without its version, for a diff
}

// consoleKind is how the console shows and reverts objects of kind.
func (s *Server) consoleKind(kind events.Kind) consoleKind {
	return map[events.Kind]consoleKind{
		events.KindApp: {kind: events.KindApp, what: "app", path: "/ui/apps/",
			read: func(pr projections.Reader, n string) (any, bool, error) { return pr.App(n) },
			revert: func(ctx context.Context, m commands.Meta, n string, to int64) (any, error) {
				return s.cmds.RevertApp(ctx, m, n, to)
			},
			versionless: func(d any) any { a, _ := d.(projections.App); a.Version = 0; return a }},
		events.KindDeviceGroup: {kind: events.KindDeviceGroup, what: "device group", path: "/ui/groups/",
			read: func(pr projections.Reader, n string) (any, bool, error) { return pr.DeviceGroup(n) },
			revert: func(ctx context.Context, m commands.Meta, n string, to int64) (any, error) {
				return s.cmds.RevertDeviceGroup(ctx, m, n, to)
			},
			versionless: func(d any) any { g, _ := d.(projections.DeviceGroup); g.Version = 0; return g }},
		events.KindCronJob: {kind: events.KindCronJob, what: "cron job", path: "/ui/cron_jobs/",
			read: func(pr projections.Reader, n string) (any, bool, error) { return pr.CronJob(n) },
			revert: func(ctx context.Context, m commands.Meta, n string, to int64) (any, error) {
				return s.cmds.RevertCronJob(ctx, m, n, to)
			},
			versionless: func(d any) any { c, _ := d.(projections.CronJob); c.Version = 0; return c }},
	}[kind]
}

// revertFlow reverts an object to one of its versions: GET shows what the
// revert would change and which device groups (with how many devices) it
// would reach, from a dry run; POST (the preview's button) does it.
func (s *Server) revertFlow(w http.ResponseWriter, r *http.Request, id *identity, se session, k consoleKind) {
	name := chi.URLParam(r, "name")
	if !id.can(k.kind, name, events.PermRW) {
		s.consoleError(w, http.StatusForbidden, "You may not change "+k.what+" "+name+".")
		return
	}
	to, err := strconv.ParseInt(r.FormValue("to"), 10, 64)
	if err != nil || to < 0 {
		s.consoleError(w, http.StatusBadRequest, "Revert to: a version (an offset) is needed.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	if r.Method == http.MethodPost {
		if _, err := k.revert(ctx, commands.Meta{Actor: id.name}, name, to); err != nil {
			s.consoleError(w, http.StatusConflict, "The "+k.what+" "+name+" was not reverted: "+err.Error())
			return
		}
		http.Redirect(w, r, k.path+url.PathEscape(name), http.StatusSeeOther)
		return
	}
	var now any
	_ = s.proj.View(func(pr projections.Reader) error {
		var err error
		now, _, err = k.read(pr, name)
		return err
	})
	m := commands.Meta{Actor: id.name, DryRun: true, DryRunGroups: new([]string)}
	result, err := k.revert(ctx, m, name, to)
	if err != nil {
		s.consoleError(w, http.StatusConflict, "The "+k.what+" "+name+" cannot be reverted to "+strconv.FormatInt(to, 10)+": "+err.Error())
		return
	}
	type reach struct {
		Group   string
		Devices int
	}
	var groups []reach
	for _, g := range *m.DryRunGroups {
		n := 0
		if s.reports != nil {
			n, _ = s.reports.DeviceCount(g)
		}
		groups = append(groups, reach{g, n})
	}
	data := s.page(r, id, se, "Revert "+name)
	data["Name"], data["What"], data["Path"], data["To"] = name, k.what, k.path, to
	data["Changes"], data["Groups"] = fieldChanges(k.versionless(now), k.versionless(result)), groups
	s.render(w, http.StatusOK, "revert.html", data)
}

// consoleGroupVersions lists a device group's versions, each with what it
// changed (or the app change that made it), and a revert for each.
func (s *Server) consoleGroupVersions(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	if !id.can(events.KindDeviceGroup, name, events.PermRO) {
		s.consoleError(w, http.StatusForbidden, "You may not read device group "+name+".")
		return
	}
	if s.past == nil {
		s.consoleError(w, http.StatusServiceUnavailable, "Time travel is not configured on this manager.")
		return
	}
	from := int64(0)
	if v, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64); err == nil && v >= 0 {
		from = v
	}
	versions, next, err := s.past.Versions(r.Context(), events.KindDeviceGroup, name, from, 100)
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	data := s.page(r, id, se, "Device group "+name+": versions")
	data["Name"], data["Versions"], data["Next"] = name, versions, next
	data["CanWrite"] = id.can(events.KindDeviceGroup, name, events.PermRW)
	s.render(w, http.StatusOK, "group_versions.html", data)
}

// consoleDiff compares two versions of an app or a cron job (?a= and ?b=, offsets),
// each read as of its offset.
func (s *Server) consoleDiff(kind events.Kind) consoleHandler {
	return func(w http.ResponseWriter, r *http.Request, id *identity, se session) {
		s.diffVersions(w, r, id, se, s.consoleKind(kind))
	}
}

func (s *Server) diffVersions(w http.ResponseWriter, r *http.Request, id *identity, se session, k consoleKind) {
	name := chi.URLParam(r, "name")
	if !id.can(k.kind, name, events.PermRO) {
		s.consoleError(w, http.StatusForbidden, "You may not read "+k.what+" "+name+".")
		return
	}
	if s.past == nil {
		s.consoleError(w, http.StatusServiceUnavailable, "Time travel is not configured on this manager.")
		return
	}
	var at [2]int64
	var docs [2]any
	var found [2]bool
	for i, p := range []string{"a", "b"} {
		v, err := strconv.ParseInt(r.URL.Query().Get(p), 10, 64)
		if err != nil || v < 0 || v > s.proj.Applied() {
			s.consoleError(w, http.StatusBadRequest, fmt.Sprintf("%s: a version of the %s (an offset from 0 to %d).", p, k.what, s.proj.Applied()))
			return
		}
		at[i] = v
		err = s.past.ViewAt(r.Context(), v, func(pr projections.Reader) error {
			var err error
			docs[i], found[i], err = k.read(pr, name)
			return err
		})
		if err != nil {
			s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
			return
		}
	}
	var changes []fieldChange
	if found[0] && found[1] {
		changes = fieldChanges(docs[0], docs[1])
	}
	data := s.page(r, id, se, strings.ToUpper(k.what[:1])+k.what[1:]+" "+name+": two versions")
	data["Name"], data["A"], data["B"], data["Found"], data["Changes"] = name, at[0], at[1], found, changes
	data["Kind"], data["What"], data["Path"] = strings.ToUpper(k.what[:1])+k.what[1:], k.what, k.path
	s.render(w, http.StatusOK, "diff.html", data)
}

// A create form (an app, a device group): its fields are turned into the
// body the API takes and read by the API's own decoder, so a form and a
// request are refused for the same reasons, in the same words. "Preview"
// runs the command as a dry run and shows its result; "Create" runs it.

// createForm is what a create page shows back.
type createForm struct {
	Kind    string            // "app" or "device group"
	Action  string            // the form's URL
	Values  map[string]string // the fields as typed
	Problem string
	Preview string // the dry run's result (JSON), when previewed
	Reach   []string
	Fixed   bool // the name is the object's, not a field
}

// splitList reads "a, b,c" (or one per line) as a list.
func splitList(v string) []any {
	out := []any{}
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// appBody is the API body of the app form's fields.
func appBody(v map[string]string) ([]byte, error) {
	body := map[string]any{"docker_image": v["docker_image"], "running": v["running"] != "false"}
	ports := []any{}
	for _, p := range splitList(v["starting_ports"]) {
		// 80, or host:container as the API's {"host": "container"}.
		if host, container, ok := strings.Cut(p.(string), ":"); ok {
			ports = append(ports, map[string]any{strings.TrimSpace(host): strings.TrimSpace(container)})
		} else if n, err := strconv.Atoi(p.(string)); err == nil {
			ports = append(ports, n)
		} else {
			ports = append(ports, p)
		}
	}
	body["starting_ports"] = ports
	env, err := envField(v["env_vars"])
	if err != nil {
		return nil, err
	}
	body["env_vars"] = env
	return json.Marshal(body)
}

// pairsField reads a form field of one key<sep>value a line (blank lines
// skipped; the value trimmed too when trimValue); bad is the error of a
// line without sep.
func pairsField(v, sep string, trimValue bool, bad func(line string) error) (map[string]any, error) {
	out := map[string]any{}
	for _, line := range strings.Split(v, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, val, ok := strings.Cut(line, sep)
		if !ok {
			return nil, bad(line)
		}
		if trimValue {
			val = strings.TrimSpace(val)
		}
		out[strings.TrimSpace(k)] = val
	}
	return out, nil
}

// pairLines is a map as such a field shows it, sorted.
func pairLines(m map[string]string, sep string) string {
	lines := []string{}
	for k, v := range m {
		lines = append(lines, k+sep+v)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// envField reads an environment field: one NAME=value a line.
func envField(v string) (map[string]any, error) {
	return pairsField(v, "=", false, func(line string) error { return fmt.Errorf("environment: %q is not NAME=value", line) })
}

// cronBody is the API body of the cron job form's fields.
func cronBody(v map[string]string) ([]byte, error) {
	env, err := envField(v["env_vars"])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"schedule": strings.TrimSpace(v["schedule"]), "docker_image": strings.TrimSpace(v["docker_image"]),
		"env_vars": env, "running": v["running"] != "false"})
}

var cronFields = []string{"schedule", "docker_image", "env_vars", "running"}

func (s *Server) consoleNewCronJob(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	s.consoleCreate(w, r, id, se, events.KindCronJob, append([]string{"name"}, cronFields...),
		formCommand(cronBody, cronSpecBody, s.cmds.CreateCronJob))
}

// consoleEditCronJob changes a cron job's schedule, image, environment
// and running state (a patch: its other fields are left as they are).
func (s *Server) consoleEditCronJob(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	var cj projections.CronJob
	var found bool
	if err := s.proj.View(func(pr projections.Reader) error {
		var err error
		cj, found, err = pr.CronJob(name)
		return err
	}); err != nil || !found || !id.can(events.KindCronJob, name, events.PermRO) {
		s.consoleError(w, http.StatusNotFound, "No cron job "+name+" that you may read.")
		return
	}
	values := map[string]string{"schedule": cj.Schedule, "docker_image": cj.DockerImage, "env_vars": pairLines(cj.EnvVars, "="),
		"running": strconv.FormatBool(cj.Running)}
	s.consoleForm(w, r, id, se, consoleFormSpec{kind: events.KindCronJob, title: "Change cron job " + name, what: "cron job",
		action: "/ui/cron_jobs/" + url.PathEscape(name) + "/edit", to: "/ui/cron_jobs/", name: name, fields: cronFields, values: values,
		run: formCommand(cronBody, cronPatchBody, s.cmds.PatchCronJob)})
}

// groupBody is the API body of the device group form's fields.
func groupBody(v map[string]string) ([]byte, error) {
	body := map[string]any{"apps": splitList(v["apps"]), "cron_jobs": splitList(v["cron_jobs"])}
	if p := strings.TrimSpace(v["rollout"]); p != "" {
		body["rollout"] = json.RawMessage(p)
		if !json.Valid([]byte(p)) {
			return nil, errors.New("rollout: not JSON (for example {\"waves\": [10, 100]})")
		}
	}
	return json.Marshal(body)
}

func (s *Server) consoleNewApp(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	s.consoleCreate(w, r, id, se, events.KindApp, []string{"name", "docker_image", "starting_ports", "env_vars", "running"},
		formCommand(appBody, appSpecBody, s.cmds.CreateApp))
}

func (s *Server) consoleNewGroup(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	s.consoleCreate(w, r, id, se, events.KindDeviceGroup, []string{"name", "apps", "cron_jobs", "rollout"},
		formCommand(groupBody, groupSpecBody, s.cmds.CreateDeviceGroup))
}

// consoleCreate serves a create form: GET shows it, POST previews (a dry
// run) or creates.
func (s *Server) consoleCreate(w http.ResponseWriter, r *http.Request, id *identity, se session, kind events.Kind, fields []string,
	create func(context.Context, commands.Meta, string, map[string]string) (any, error)) {
	what, page, to := "app", "/ui/apps/new", "/ui/apps/"
	switch kind {
	case events.KindDeviceGroup:
		what, page, to = "device group", "/ui/groups/new", "/ui/groups/"
	case events.KindCronJob:
		what, page, to = "cron job", "/ui/cron_jobs/new", "/ui/cron_jobs/"
	case events.KindUserGroup:
		what, page, to = "user group", "/ui/user_groups/new", "/ui/users#ug-"
	}
	s.consoleForm(w, r, id, se, consoleFormSpec{kind: kind, title: "New " + what, what: what, action: page, to: to,
		fields: fields, values: map[string]string{"running": "true"}, run: create})
}

// formCommand is what a form runs: its fields made the API's body
// (toBody), read by the API's own decoder (decode: refused for the same
// reasons, in the same words), then the command.
func formCommand[T, R any](toBody func(map[string]string) ([]byte, error), decode func([]byte) (T, error),
	run func(context.Context, commands.Meta, string, T) (R, error)) func(context.Context, commands.Meta, string, map[string]string) (any, error) {
	return func(ctx context.Context, m commands.Meta, name string, v map[string]string) (any, error) {
		raw, err := toBody(v)
		if err != nil {
			return nil, err
		}
		x, err := decode(raw)
		if err != nil {
			return nil, err
		}
		return run(ctx, m, name, x)
	}
}

// consoleFormSpec is one form that runs a command: a create, or a change
// of an object (name set: it is not a field).
type consoleFormSpec struct {
	kind        events.Kind
	title, what string
	action, to  string // the form's URL; where a success goes (+ the name)
	name        string // the object changed ("": the form names it)
	fields      []string
	values      map[string]string // shown first
	run         func(context.Context, commands.Meta, string, map[string]string) (any, error)
}

// consoleForm serves a form that runs a command: GET shows it, POST
// previews it (a dry run, its result shown) or runs it.
func (s *Server) consoleForm(w http.ResponseWriter, r *http.Request, id *identity, se session, fs consoleFormSpec) {
	f := createForm{Kind: fs.what, Action: fs.action, Values: fs.values, Fixed: fs.name != ""}
	if f.Values == nil {
		f.Values = map[string]string{}
	}
	show := func(status int) {
		data := s.page(r, id, se, fs.title)
		data["Form"] = f
		s.render(w, status, "create.html", data)
	}
	if fs.name != "" {
		f.Values["name"] = fs.name
	}
	if r.Method == http.MethodGet {
		show(http.StatusOK)
		return
	}
	for _, k := range fs.fields {
		if k != "name" || fs.name == "" {
			f.Values[k] = r.PostFormValue(k)
		}
	}
	name := strings.TrimSpace(f.Values["name"])
	if err := events.ValidateName(fs.kind, name); err != nil {
		f.Problem = "name: " + err.Error()
		show(http.StatusBadRequest)
		return
	}
	if !id.can(fs.kind, name, events.PermRW) {
		f.Problem = "You may not change " + fs.what + " " + name + "."
		show(http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	m := commands.Meta{Actor: id.name}
	preview := r.PostFormValue("step") != "create"
	if preview {
		m.DryRun, m.DryRunGroups = true, new([]string)
	}
	doc, err := fs.run(ctx, m, name, f.Values)
	if err != nil {
		f.Problem = err.Error()
		show(http.StatusBadRequest)
		return
	}
	if preview {
		b, _ := json.MarshalIndent(doc, "", "  ")
		f.Preview, f.Reach = string(b), *m.DryRunGroups
		show(http.StatusOK)
		return
	}
	http.Redirect(w, r, fs.to+url.PathEscape(name), http.StatusSeeOther)
}

// consoleEditApp changes an app's image, ports, environment and running
// state (a patch: its other fields are left as they are).
func (s *Server) consoleEditApp(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	var app projections.App
	var found bool
	if err := s.proj.View(func(pr projections.Reader) error {
		var err error
		app, found, err = pr.App(name)
		return err
	}); err != nil || !found || !id.can(events.KindApp, name, events.PermRO) {
		s.consoleError(w, http.StatusNotFound, "No app "+name+" that you may read.")
		return
	}
	var ports []string
	for _, p := range app.StartingPorts {
		b, _ := json.Marshal(p)
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			for h, c := range m {
				ports = append(ports, fmt.Sprintf("%s:%v", h, c))
			}
		} else {
			ports = append(ports, string(b))
		}
	}
	values := map[string]string{"docker_image": app.DockerImage, "starting_ports": strings.Join(ports, ", "),
		"env_vars": pairLines(app.EnvVars, "="), "running": strconv.FormatBool(app.Running)}
	s.consoleForm(w, r, id, se, consoleFormSpec{kind: events.KindApp, title: "Change app " + name, what: "app",
		action: "/ui/apps/" + url.PathEscape(name) + "/edit", to: "/ui/apps/", name: name,
		fields: []string{"docker_image", "starting_ports", "env_vars", "running"}, values: values,
		run: formCommand(appBody, appPatchBody, s.cmds.PatchApp)})
}

// consoleUsers lists the users and user groups with what each group may
// do (admins only, as the API's /users).
func (s *Server) consoleUsers(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	s.usersPage(w, r, id, se, http.StatusOK, nil)
}

// usersPage renders the users page, with what an action just did (a
// token to show once, a problem) in done.
func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, id *identity, se session, status int, done map[string]string) {
	if !id.local && !id.admin {
		s.consoleError(w, http.StatusForbidden, "Users and user groups are for admins.")
		return
	}
	type userRow struct {
		Name    string
		Version int64
		Groups  []string
	}
	var users []userRow
	var groups []projections.UserGroup
	err := s.proj.View(func(pr projections.Reader) error {
		names, err := pr.Names(events.KindUser)
		if err != nil {
			return err
		}
		for _, n := range names {
			u, found, err := pr.User(n)
			if err != nil || !found {
				return err
			}
			ugs, err := pr.UserGroupsOf(n)
			if err != nil {
				return err
			}
			row := userRow{Name: n, Version: u.Version}
			for _, g := range ugs {
				row.Groups = append(row.Groups, g.Name)
			}
			users = append(users, row)
		}
		if names, err = pr.Names(events.KindUserGroup); err != nil {
			return err
		}
		for _, n := range names {
			g, found, err := pr.UserGroup(n)
			if err != nil || !found {
				return err
			}
			groups = append(groups, g)
		}
		return nil
	})
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	data := s.page(r, id, se, "Users")
	data["Users"], data["UserGroups"], data["Done"] = users, groups, done
	s.render(w, status, "users.html", data)
}

// consoleNewUser creates a user with a password (optional) and a new
// token, shown once.
func (s *Server) consoleNewUser(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	if !id.local && !id.admin {
		s.consoleError(w, http.StatusForbidden, "Users and user groups are for admins.")
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if err := events.ValidateName(events.KindUser, name); err != nil {
		s.usersPage(w, r, id, se, http.StatusBadRequest, map[string]string{"Problem": "name: " + err.Error()})
		return
	}
	sec := commands.Secrets{}
	if p := r.PostFormValue("password"); p != "" {
		sec.Password = &p
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	u, err := s.cmds.CreateUser(ctx, commands.Meta{Actor: id.name}, name, sec)
	if err != nil {
		s.usersPage(w, r, id, se, http.StatusBadRequest, map[string]string{"Problem": err.Error()})
		return
	}
	s.usersPage(w, r, id, se, http.StatusOK, map[string]string{"User": name, "Token": u.Token, "What": "created"})
}

// consoleUserAction refreshes a user's token (the new one shown once)
// or deletes the user.
func (s *Server) consoleUserAction(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	if !id.local && !id.admin {
		s.consoleError(w, http.StatusForbidden, "Users and user groups are for admins.")
		return
	}
	name, action := chi.URLParam(r, "name"), chi.URLParam(r, "action")
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	m := commands.Meta{Actor: id.name}
	var err error
	done := map[string]string{"User": name}
	switch action {
	case "refresh":
		done["Token"], err = s.cmds.RefreshToken(ctx, m, name)
		done["What"] = "given a new token"
	case "delete":
		err = s.cmds.DeleteUser(ctx, m, name)
		done["What"] = "deleted"
	default:
		s.consoleError(w, http.StatusNotFound, "No such action on a user: "+action+".")
		return
	}
	if err != nil {
		s.usersPage(w, r, id, se, http.StatusBadRequest, map[string]string{"Problem": err.Error()})
		return
	}
	s.usersPage(w, r, id, se, http.StatusOK, done)
}

var userGroupFields = []string{"group_members", "admin", "pruning_allowed", "device_groups", "apps", "cron_jobs"}

// permLines reads a permissions field: one "name: ro" or "name: rw" a line.
func permLines(field, v string) (map[string]any, error) {
	return pairsField(v, ":", true, func(line string) error { return fmt.Errorf("%s: %q is not name: ro or name: rw", field, line) })
}

// userGroupBody is the API body of the user group form's fields.
func userGroupBody(v map[string]string) ([]byte, error) {
	body := map[string]any{"group_members": splitList(v["group_members"]), "admin": v["admin"] == "true", "pruning_allowed": v["pruning_allowed"] == "true"}
	for _, f := range []string{"device_groups", "apps", "cron_jobs"} {
		perms, err := permLines(f, v[f])
		if err != nil {
			return nil, err
		}
		body[f] = perms
	}
	return json.Marshal(body)
}

func (s *Server) consoleNewUserGroup(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	s.consoleCreate(w, r, id, se, events.KindUserGroup, append([]string{"name"}, userGroupFields...),
		formCommand(userGroupBody, userGroupSpecBody, s.cmds.CreateUserGroup))
}

// consoleEditUserGroup changes a user group: members, admin, pruning and
// permissions, all as the form shows them.
func (s *Server) consoleEditUserGroup(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	var ug projections.UserGroup
	var found bool
	if err := s.proj.View(func(pr projections.Reader) error {
		var err error
		ug, found, err = pr.UserGroup(name)
		return err
	}); err != nil || !found || (!id.local && !id.admin) {
		s.consoleError(w, http.StatusNotFound, "No user group "+name+" that you may read.")
		return
	}
	values := map[string]string{"group_members": strings.Join(ug.GroupMembers, ", "), "admin": strconv.FormatBool(ug.Admin),
		"pruning_allowed": strconv.FormatBool(ug.PruningAllowed), "device_groups": pairLines(ug.DeviceGroups, ": "), "apps": pairLines(ug.Apps, ": "),
		"cron_jobs": pairLines(ug.CronJobs, ": ")}
	s.consoleForm(w, r, id, se, consoleFormSpec{kind: events.KindUserGroup, title: "Change user group " + name, what: "user group",
		action: "/ui/user_groups/" + url.PathEscape(name) + "/edit", to: "/ui/users#ug-", name: name, fields: userGroupFields, values: values,
		run: formCommand(userGroupBody, userGroupPatchBody, s.cmds.UpdateUserGroup)})
}

func (s *Server) consoleDeleteUserGroup(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	if !id.local && !id.admin {
		s.consoleError(w, http.StatusForbidden, "Users and user groups are for admins.")
		return
	}
	name := chi.URLParam(r, "name")
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	if err := s.cmds.DeleteUserGroup(ctx, commands.Meta{Actor: id.name}, name); err != nil {
		s.usersPage(w, r, id, se, http.StatusBadRequest, map[string]string{"Problem": err.Error()})
		return
	}
	s.usersPage(w, r, id, se, http.StatusOK, map[string]string{"Group": name, "What": "deleted"})
}

// consoleEditGroup changes a device group's apps, cron jobs and rollout
// policy (a patch of those), previewed as a dry run first.
func (s *Server) consoleEditGroup(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	var g projections.DeviceGroup
	var found bool
	if err := s.proj.View(func(pr projections.Reader) error {
		var err error
		g, found, err = pr.DeviceGroup(name)
		return err
	}); err != nil || !found || !id.can(events.KindDeviceGroup, name, events.PermRO) {
		s.consoleError(w, http.StatusNotFound, "No device group "+name+" that you may read.")
		return
	}
	values := map[string]string{"apps": strings.Join(g.Apps, ", "), "cron_jobs": strings.Join(g.CronJobs, ", ")}
	if g.Rollout != nil {
		b, _ := json.Marshal(g.Rollout)
		values["rollout"] = string(b)
	}
	s.consoleForm(w, r, id, se, consoleFormSpec{kind: events.KindDeviceGroup, title: "Change device group " + name, what: "device group",
		action: "/ui/groups/" + url.PathEscape(name) + "/edit", to: "/ui/groups/", name: name,
		fields: []string{"apps", "cron_jobs", "rollout"}, values: values,
		run: formCommand(groupBody, groupPatchBody, s.cmds.PatchDeviceGroup)})
}

// consoleCronJob is a cron job's page: its spec, and its events with
// their verdicts.
func (s *Server) consoleCronJob(w http.ResponseWriter, r *http.Request, id *identity, se session) {
	name := chi.URLParam(r, "name")
	if !id.can(events.KindCronJob, name, events.PermRO) {
		s.consoleError(w, http.StatusForbidden, "You may not read cron job "+name+".")
		return
	}
	var cj projections.CronJob
	var found bool
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		cj, found, err = pr.CronJob(name)
		return err
	})
	var evs []eventView
	if err == nil && s.events != nil {
		evs, _, err = s.eventsPage(r.Context(), eventFilter{kind: string(events.KindCronJob), name: name, to: -1}, 0, 100)
	}
	var versions []past.AppVersion
	next := int64(-1)
	if err == nil && s.past != nil {
		from := int64(0)
		if v, perr := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64); perr == nil && v >= 0 {
			from = v
		}
		versions, next, err = s.past.Versions(r.Context(), events.KindCronJob, name, from, 100)
	}
	if err != nil {
		s.consoleError(w, http.StatusServiceUnavailable, "The projection cannot be read now: "+err.Error())
		return
	}
	if !found && len(evs) == 0 {
		s.consoleError(w, http.StatusNotFound, "There is no cron job "+name+", and there never was.")
		return
	}
	data := s.page(r, id, se, "Cron job "+name)
	data["Name"], data["Job"], data["Exists"], data["Events"] = name, cj, found, evs
	data["Versions"], data["Next"], data["Path"] = versions, next, "/ui/cron_jobs/"
	data["CanWrite"] = id.can(events.KindCronJob, name, events.PermRW)
	s.render(w, http.StatusOK, "cron.html", data)
}
