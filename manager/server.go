package manager

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Projection is what the manager needs to know about its projection.
type Projection interface {
	// Applied is the offset of the last folded event, -1 if none.
	Applied() int64
	// Folded counts the events this process folded.
	Folded() int64
	// Err is why the projection stopped for good, nil while it runs.
	Err() error
	// View reads a consistent snapshot of the projection.
	View(fn func(r projections.Reader) error) error
	// WaitFor blocks until the event at offset is folded.
	WaitFor(ctx context.Context, offset int64) error
}

// LogEnd reports the event log's next offset (for the lag metric).
type LogEnd interface {
	Bounds(ctx context.Context) (start, end int64, err error)
}

// Config is what a Server serves and how.
type Config struct {
	Projection Projection
	Commands   Commands
	Log        LogEnd
	Logger     *slog.Logger
	// CacheTime is how long a device group's /info is served from memory
	// (CACHE_TIME; 0 turns the cache off). Changes folded by this manager
	// invalidate it at once; the TTL bounds what a missed change costs.
	CacheTime time.Duration
	// CacheMaxSize is the number of device groups whose /info is kept
	// (CACHE_MAX_SIZE), least recently used first out.
	CacheMaxSize int
	Auth         Auth
	// Serving says whether the projection has caught up with the log (at
	// start, and again after a rebuild while running); while it says no,
	// the API answers 503 and /healthz takes the manager out of rotation
	// (nil: always serving).
	Serving func() bool
	// Rebuilds counts the rebuilds of the projection that began (nil:
	// none): an answer read across one is replaced by a 503.
	Rebuilds func() uint64
	// RebuildingAside says whether the projection is being rebuilt in a
	// store aside (nil: never): reads, polls included, are served from
	// the last consistent state; commands answer 503 until it is swapped
	// in.
	RebuildingAside func() bool
	// Reports and ReportSink serve reporting (nil: 503 on those routes).
	Reports    Reports
	ReportSink ReportSink
	// EventLog serves the event listing, Past history and time travel
	// (either nil: 503 on those).
	EventLog EventLog
	Past     Past
	// Poisoned, when set, lists what the reporters refused (GET
	// /api/v2/reports/refused).
	Poisoned PoisonedReports
	// Limits bound failed logins and, optionally, request rates.
	Limits Limits
	// Storage, when set, says whether this manager may write (the data
	// directory has room); while it returns an error, commands and
	// reports answer 507 with it and /healthz answers 503. It is also
	// what pauses the projection's folding (Projector.Hold): meanwhile,
	// reads do not wait to catch up with the log.
	Storage func() error
	// ConsoleKey signs the web console's sessions: the same on every
	// manager of a cluster (nil: a random key of this process, so a
	// session is good on this manager only, until it restarts).
	ConsoleKey []byte
}

// Defaults of Nebula 2.7.
const (
	DefaultCacheTime    = 10 * time.Second
	DefaultCacheMaxSize = 1024
)

// Server is the manager's HTTP handler.
type Server struct {
	limits     Limits
	failedAuth *limiter
	requests   *limiter // nil: no request rate limit
	storage    func() error
	proj       Projection
	cmds       Commands
	log        LogEnd
	logger     *slog.Logger
	metrics    *requestMetrics
	cache      *infoCache
	auth       *authenticator
	serving    func() bool
	rebuilds   func() uint64
	aside      func() bool
	reports    Reports
	sink       ReportSink
	events     EventLog
	past       Past
	refused    *refusals
	poisoned   PoisonedReports
	router     chi.Router
	poll       http.Handler // pollRoute's middlewares and handler, unrouted (ServeHTTP)
	consoleKey []byte       // signs console sessions (console.go)
}

// New returns the manager's handler.
func New(cfg Config) *Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{proj: cfg.Projection, cmds: cfg.Commands, log: cfg.Log, logger: logger, metrics: newRequestMetrics()}
	s.auth = newAuthenticator(cfg.Auth, cfg.Projection)
	s.consoleKey = consoleKey(cfg.ConsoleKey)
	s.serving, s.rebuilds, s.aside = cfg.Serving, cfg.Rebuilds, cfg.RebuildingAside
	s.reports, s.sink, s.events, s.past = cfg.Reports, cfg.ReportSink, cfg.EventLog, cfg.Past
	s.refused = newRefusals(logger.With("component", "reports"))
	s.poisoned = cfg.Poisoned
	s.cache = newInfoCache(cfg.CacheTime, cmp.Or(cfg.CacheMaxSize, DefaultCacheMaxSize), s.readInfo)
	s.limits = cfg.Limits
	s.storage = cfg.Storage
	every := cmp.Or(cfg.Limits.FailedAuthEvery, DefaultFailedAuthEvery)
	s.failedAuth = newLimiter(1/every.Seconds(), float64(cmp.Or(cfg.Limits.FailedAuthBurst, DefaultFailedAuthBurst)))
	if rps := cfg.Limits.RequestsPerSecond; rps > 0 {
		s.requests = newLimiter(rps, max(2*rps, 1))
	}
	r := chi.NewRouter()
	r.Use(s.outerMiddlewares()...)
	r.Get("/metrics", s.serveMetrics)
	// Unauthenticated, for load balancers (2.7's /status needs credentials).
	r.Get("/healthz", s.healthz)
	r.Route("/api/v2", s.routes)
	r.Route("/ui", s.consoleRoutes)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
	})
	s.router = r
	s.poll = chi.Chain(append(s.outerMiddlewares(), s.apiMiddlewares()...)...).HandlerFunc(s.pollHandler())
	return s
}

// outerMiddlewares wrap every route; apiMiddlewares, inside them, every
// /api/v2 route.
func (s *Server) outerMiddlewares() []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{s.recoverJSON, limitHeaders, s.metrics.middleware, s.storageGuard}
}

func (s *Server) apiMiddlewares() []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{s.whenReady, s.authenticated, s.jsonMutations}
}

// pollRoute is the route every device polls; polled matches its path
// around the name.
const pollRoute = "/api/v2/device_groups/{name}/info"

var pollPrefix, pollSuffix, _ = strings.Cut(pollRoute, "{name}")

// ServeHTTP serves a device's poll through the middlewares and handler
// its route has in the router, without routing it: a fleet polls many
// times a second per manager, and the router's work (three nested routers
// to walk, the route pattern built again, the request copied into a new
// context) was a third of a poll's time in process (BenchmarkInfoChain).
// Every other request, and a poll in any other form, goes to the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := polled(r); ok {
		// As a mux does, the route's pattern (the request metrics' label;
		// name reads the group from the path again).
		r.Pattern = pollRoute
		s.poll.ServeHTTP(w, r)
		return
	}
	s.router.ServeHTTP(w, r)
}

// polled returns the device group of a poll, GET
// /api/v2/device_groups/<name>/info, in the one form the router gives the
// same route and name: no escaped characters, a name without '/'.
func polled(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet || r.URL.RawPath != "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, pollPrefix)
	if !ok {
		return "", false
	}
	group, ok := strings.CutSuffix(rest, pollSuffix)
	if !ok || group == "" || strings.IndexByte(group, '/') >= 0 {
		return "", false
	}
	return group, true
}

// Router exposes the routes (for the test that walks them).
func (s *Server) Router() chi.Routes { return s.router }

// HTTPServer wraps h with the timeouts every listener of ours uses. The
// write timeout leaves room for the longest long-poll.
func HTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    serverMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// status is the original's health check: 200 {"api_available": true}.
func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"api_available": true})
}

// healthz answers 503 when the projection stopped or the event log cannot
// be read or written (the manager can serve reads but not writes: take it
// out of rotation).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !s.isReady() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"api_available": false, "message": "catching up with the event log"})
		return
	}
	if err := s.proj.Err(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"api_available": false, "message": "projection stopped: " + err.Error()})
		return
	}
	if err := s.eventLogUp(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"api_available": false, "message": err.Error()})
		return
	}
	if s.storage != nil {
		if err := s.storage(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"api_available": false, "message": err.Error()})
			return
		}
	}
	if s.aside != nil && s.aside() {
		// Polls and reads are served (the last consistent state); changes
		// wait for the rebuild: in rotation, and saying so.
		writeJSON(w, http.StatusOK, map[string]any{"api_available": true, "rebuilding": true,
			"message": "the projection is being rebuilt from the event log aside; reads are served from the last consistent state, changes answer 503"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"api_available": true})
}

// storageGuard refuses writes while the data directory is nearly full:
// 507 with the reason (reads go on).
func (s *Server) storageGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if s.storage != nil {
				if err := s.storage(); err != nil {
					writeJSON(w, http.StatusInsufficientStorage, map[string]any{"message": err.Error()})
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) isReady() bool { return s.serving == nil || s.serving() }

func (s *Server) rebuildCount() uint64 {
	if s.rebuilds == nil {
		return 0
	}
	return s.rebuilds()
}

// whenReady answers 503 until the projection has caught up: a manager
// that just started, or is rebuilding its projection, must not say "does
// not exist" of what exists, nor serve a device an old configuration.
// The check is made again when the answer starts: a rebuild that began
// while the handler read (the store emptied under it) turns the answer
// into a 503 too.
func (s *Server) whenReady(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gen := s.rebuildCount()
		if !s.isReady() {
			s.notServing(w)
			return
		}
		if s.aside != nil && s.aside() && r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "the projection is being rebuilt from the event log; " +
				"reads are served from the last consistent state, changes are accepted again once it has caught up"})
			return
		}
		// The metrics' writer takes the gate (the usual case); any other
		// gets one of its own.
		if rw, ok := w.(*respWriter); ok && rw.gate == nil && rw.status == 0 {
			rw.gate, rw.gen = s, gen
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&respWriter{ResponseWriter: w, gate: s, gen: gen}, r)
	})
}

// notServing answers 503 while the projection catches up.
func (s *Server) notServing(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "the manager is catching up with the event log; retry",
		"applied_offset": s.proj.Applied()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"message":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// eventLogUp says why the event log is not usable now: it does not answer
// (Bounds), or appends failed a moment ago (Writable, when the log says).
func (s *Server) eventLogUp(ctx context.Context) error {
	if s.log == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, _, err := s.log.Bounds(ctx); err != nil {
		return fmt.Errorf("the event log cannot be reached: %w", err)
	}
	if w, ok := s.log.(interface{ Writable() error }); ok {
		if err := w.Writable(); err != nil {
			return fmt.Errorf("appends to the event log fail: %w", err)
		}
	}
	return nil
}
