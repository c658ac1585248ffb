package manager

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Auth is how the API authenticates (Nebula 2.7's settings).
type Auth struct {
	// Enabled false accepts every request as the local admin
	// (AUTH_ENABLED=false: only behind an authenticating proxy).
	Enabled bool
	// The local admin: Basic (BASIC_AUTH_USER, BASIC_AUTH_PASSWORD) and/or
	// Bearer (AUTH_TOKEN). Empty means not configured.
	User, Password, Token string
}

// identity is who a request is from, with the permissions of its user
// groups merged.
type identity struct {
	name    string
	local   bool // the local admin, or auth disabled
	admin   bool
	pruning bool
	perms   map[events.Kind]map[string]string
}

// can reports whether the identity may do level ("ro" or "rw") on the
// named object of kind. rw implies ro (in 2.7 it did not).
func (id *identity) can(kind events.Kind, name, level string) bool {
	if id.local || id.admin {
		return true
	}
	got := id.perms[kind][name]
	return got == level || got == events.PermRW
}

// merge adds a user group's permissions; of ro and rw on one object, rw
// wins (2.7 let the group read last win).
func (id *identity) merge(ug projections.UserGroup) {
	id.admin = id.admin || ug.Admin
	id.pruning = id.pruning || ug.PruningAllowed
	for kind, m := range map[events.Kind]map[string]string{events.KindApp: ug.Apps, events.KindDeviceGroup: ug.DeviceGroups, events.KindCronJob: ug.CronJobs} {
		if id.perms[kind] == nil {
			id.perms[kind] = map[string]string{}
		}
		for n, p := range m {
			if id.perms[kind][n] != events.PermRW {
				id.perms[kind][n] = p
			}
		}
	}
}

// authenticator checks credentials. Successful password checks are
// remembered for a minute (by a hash of user, password and stored hash),
// because bcrypt costs a quarter of a second and workers poll every few
// seconds with Basic credentials.
type authenticator struct {
	cfg  Auth
	proj Projection

	mu       sync.Mutex
	verified map[[32]byte]time.Duration // until, monotonic()
	// Identities of recently seen credentials, valid while no user or
	// user group changed (gen) and for at most verifiedTTL: a device
	// polling every few seconds costs no projection read.
	ids map[[32]byte]cachedIdentity
	gen atomic.Uint64
	// The configured admin's credentials as bearerKey and basicKey make
	// them (zero when not configured): a request's credentials are hashed
	// once, for the comparison and the cache alike.
	adminToken, adminBasic [32]byte
}

type cachedIdentity struct {
	id    *identity
	gen   uint64
	until time.Duration // monotonic()
}

const (
	verifiedTTL = time.Minute
	verifiedMax = 100_000
)

func newAuthenticator(cfg Auth, proj Projection) *authenticator {
	a := &authenticator{cfg: cfg, proj: proj, verified: map[[32]byte]time.Duration{}, ids: map[[32]byte]cachedIdentity{}}
	if cfg.Token != "" {
		a.adminToken = bearerKey(cfg.Token)
	}
	if cfg.User != "" && cfg.Password != "" {
		a.adminBasic = basicKey(cfg.User, cfg.Password)
	}
	return a
}

// bearerKey and basicKey digest credentials, each kind apart (its own
// prefix; the user's length before it, so no split of one string into
// user and password makes another's).
func bearerKey(token string) [32]byte {
	var buf [128]byte
	return sha256.Sum256(append(append(buf[:0], "bearer\x00"...), token...))
}

func basicKey(user, password string) [32]byte {
	var buf [128]byte
	b := binary.BigEndian.AppendUint32(append(buf[:0], "basic\x00"...), uint32(len(user)))
	return sha256.Sum256(append(append(b, user...), password...))
}

// isAdmin compares a request's credential digest with the configured
// admin's in constant time.
func isAdmin(key, admin [32]byte) bool {
	return admin != [32]byte{} && subtle.ConstantTimeCompare(key[:], admin[:]) == 1
}

// usersChanged forgets every cached identity.
func (a *authenticator) usersChanged() { a.gen.Add(1) }

// cached runs find unless the credentials' identity is cached.
func (a *authenticator) cached(key [32]byte, find func() (*identity, string, error)) (*identity, string, error) {
	gen, now := a.gen.Load(), monotonic()
	a.mu.Lock()
	c, ok := a.ids[key]
	a.mu.Unlock()
	if ok && c.gen == gen && now < c.until {
		return c.id, "", nil
	}
	id, scheme, err := find()
	if id != nil {
		a.mu.Lock()
		if len(a.ids) >= verifiedMax {
			clear(a.ids)
		}
		a.ids[key] = cachedIdentity{id: id, gen: gen, until: now + verifiedTTL}
		a.mu.Unlock()
	}
	return id, scheme, err
}

// authenticate returns the request's identity, or nil and the scheme to
// challenge with.
func (a *authenticator) authenticate(r *http.Request) (*identity, string, error) {
	if !a.cfg.Enabled {
		return &identity{name: "local-admin", local: true}, "", nil
	}
	h := requestHeader(r, "Authorization")
	if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(token)
		if token == "" {
			return nil, "Bearer", nil
		}
		key := bearerKey(token)
		if isAdmin(key, a.adminToken) {
			return &identity{name: "local-admin", local: true}, "", nil
		}
		return a.cached(key, func() (*identity, string, error) {
			sum := sha256.Sum256([]byte(token))
			return a.user(func(r projections.Reader) (projections.User, bool, error) {
				return r.UserByToken(hex.EncodeToString(sum[:]))
			}, "Bearer")
		})
	}
	user, password, ok := r.BasicAuth()
	if !ok {
		return nil, "Basic", nil
	}
	key := basicKey(user, password)
	if isAdmin(key, a.adminBasic) {
		return &identity{name: "local-admin", local: true}, "", nil
	}
	return a.cached(key, func() (*identity, string, error) {
		return a.user(func(r projections.Reader) (projections.User, bool, error) {
			u, found, err := r.User(user)
			if err != nil || !found || !a.checkPassword(user, password, u.PasswordHash) {
				return u, false, err
			}
			return u, true, nil
		}, "Basic")
	})
}

// user finds a DB user with find and merges its groups' permissions.
func (a *authenticator) user(find func(projections.Reader) (projections.User, bool, error), scheme string) (*identity, string, error) {
	var id *identity
	err := a.proj.View(func(r projections.Reader) error {
		u, found, err := find(r)
		if err != nil || !found {
			return err
		}
		groups, err := r.UserGroupsOf(u.Name)
		if err != nil {
			return err
		}
		id = &identity{name: u.Name, perms: map[events.Kind]map[string]string{}}
		for _, g := range groups {
			id.merge(g)
		}
		return nil
	})
	if err != nil || id == nil {
		return nil, scheme, err
	}
	return id, "", nil
}

func (a *authenticator) checkPassword(user, password, hash string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + password + "\x00" + hash))
	now := monotonic()
	a.mu.Lock()
	until, ok := a.verified[key]
	a.mu.Unlock()
	if ok && now < until {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.verified) >= verifiedMax {
		clear(a.verified)
	}
	a.verified[key] = now + verifiedTTL
	a.mu.Unlock()
	return true
}

// requestAuth is who sent a request, and how to ask again: the one value
// authenticated puts in the request's context. It belongs to that request
// alone, so the middlewares after authenticated change it in place rather
// than copying the request into a new context.
type requestAuth struct {
	id *identity
	// catchUp says that the request may be authenticated again once the
	// manager has caught up with the log (reauthenticated): not for a
	// local identity, nor on a route that must not wait on the log
	// (withoutCatchUp).
	catchUp bool
	s       *Server
	r       *http.Request // as it came to authenticated
}

type requestAuthCtxKey struct{}

// authContext is the request's context with its requestAuth: one
// allocation for both (context.WithValue and the requestAuth were two).
type authContext struct {
	context.Context
	auth requestAuth
}

func (c *authContext) Value(key any) any {
	if key == (requestAuthCtxKey{}) {
		return &c.auth
	}
	return c.Context.Value(key)
}

func authOf(r *http.Request) *requestAuth {
	a, _ := r.Context().Value(requestAuthCtxKey{}).(*requestAuth)
	return a
}

// reauthenticated is the request's identity once the manager has caught up
// with the log, nil when it cannot say more.
func reauthenticated(r *http.Request) *identity {
	a := authOf(r)
	if a == nil || !a.catchUp || !projections.CatchUp(a.r.Context(), a.s.log, a.s.proj) {
		return nil
	}
	id, _, err := a.s.auth.authenticate(a.r)
	if err != nil {
		return nil
	}
	return id
}

func identityOf(r *http.Request) *identity {
	if a := authOf(r); a != nil {
		return a.id
	}
	return nil
}

// authenticated is the middleware of every /api/v2 route: 401 without
// valid credentials (as JSON; 2.7 sent plain text labelled JSON).
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := ""
		if s.failedAuth.size.Load() > 0 {
			addr = s.limits.clientAddr(r)
		}
		if blocked, retry := s.failedAuth.empty(addr); blocked {
			tooMany(w, retry, "too many failed logins from this address; try again later")
			return
		}
		id, scheme, err := s.auth.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if id == nil && r.Header.Get("Authorization") != "" && projections.CatchUp(r.Context(), s.log, s.proj) {
			// Behind a load balancer, the user (or its new token) may have
			// been made through another manager a moment ago.
			if id, scheme, err = s.auth.authenticate(r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if id == nil {
			if r.Header.Get("Authorization") != "" {
				// Wrong credentials (not none): each spends the address's
				// budget, so that guessing is slow.
				addr = s.limits.clientAddr(r)
				s.failedAuth.take(addr)
				s.logger.Warn("failed login", "client", addr, "scheme", scheme)
			}
			if scheme == "Bearer" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="Authentication Required"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Basic realm="nebula"`)
			}
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Unauthorized Access"})
			return
		}
		if s.requests != nil {
			key := "id\x00" + id.name
			if id.local && !s.auth.cfg.Enabled {
				key = "addr\x00" + s.limits.clientAddr(r)
			}
			if ok, retry := s.requests.take(key); !ok {
				tooMany(w, retry, "request rate limit reached for these credentials; try again later")
				return
			}
		}
		ctx := &authContext{Context: r.Context(), auth: requestAuth{id: id, catchUp: !id.local, s: s, r: r}}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Permission requirements of routes.
type need func(id *identity, r *http.Request) bool

// withoutCatchUp denies without catching up with the log first: devices
// poll, so a device refused now asks again soon, and misconfigured ones
// must not cost a broker round trip each poll.
func withoutCatchUp(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a := authOf(r); a != nil {
			a.catchUp = false
		}
		h(w, r)
	}
}

func onObject(kind events.Kind, level string) need {
	return func(id *identity, r *http.Request) bool { return id.can(kind, name(r), level) }
}

func pruning(id *identity, _ *http.Request) bool { return id.local || id.admin || id.pruning }
func admin(id *identity, _ *http.Request) bool   { return id.local || id.admin }

// allow wraps h with a permission check: 403 {"access_allowed": false}.
func allow(n need, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if id := identityOf(r); id == nil || !n(id, r) {
			// A permission granted through another manager a moment
			// ago: ask again once this one has caught up with the log.
			if id = reauthenticated(r); id == nil || !n(id, r) {
				writeJSON(w, http.StatusForbidden, map[string]any{"access_allowed": false})
				return
			}
			authOf(r).id = id // reauthenticated found it: r has a requestAuth
		}
		h(w, r)
	}
}
