package manager

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// Commands are the mutations the API offers.
type Commands interface {
	CreateApp(ctx context.Context, m commands.Meta, name string, spec events.AppSpec) (projections.App, error)
	ReplaceApp(ctx context.Context, m commands.Meta, name string, spec events.AppSpec) (projections.App, error)
	PatchApp(ctx context.Context, m commands.Meta, name string, patch events.AppPatch) (projections.App, error)
	StopApp(ctx context.Context, m commands.Meta, name string) (projections.App, error)
	StartApp(ctx context.Context, m commands.Meta, name string) (projections.App, error)
	RestartApp(ctx context.Context, m commands.Meta, name string) (projections.App, error)
	DeleteApp(ctx context.Context, m commands.Meta, name string) error

	CreateDeviceGroup(ctx context.Context, m commands.Meta, name string, spec events.DeviceGroupSpec) (projections.DeviceGroup, error)
	ReplaceDeviceGroup(ctx context.Context, m commands.Meta, name string, spec events.DeviceGroupSpec) (projections.DeviceGroup, error)
	PatchDeviceGroup(ctx context.Context, m commands.Meta, name string, patch events.DeviceGroupPatch) (projections.DeviceGroup, error)
	DeleteDeviceGroup(ctx context.Context, m commands.Meta, name string) error
	PruneDeviceGroup(ctx context.Context, m commands.Meta, name string) (projections.DeviceGroup, error)
	PruneFleet(ctx context.Context, m commands.Meta) (map[string]int64, error)

	CreateCronJob(ctx context.Context, m commands.Meta, name string, spec events.CronJobSpec) (projections.CronJob, error)
	ReplaceCronJob(ctx context.Context, m commands.Meta, name string, spec events.CronJobSpec) (projections.CronJob, error)
	PatchCronJob(ctx context.Context, m commands.Meta, name string, patch events.CronJobPatch) (projections.CronJob, error)
	DeleteCronJob(ctx context.Context, m commands.Meta, name string) error

	RevertApp(ctx context.Context, m commands.Meta, name string, to int64) (projections.App, error)
	RevertDeviceGroup(ctx context.Context, m commands.Meta, name string, to int64) (projections.DeviceGroup, error)
	RevertCronJob(ctx context.Context, m commands.Meta, name string, to int64) (projections.CronJob, error)

	CreateUser(ctx context.Context, m commands.Meta, name string, sec commands.Secrets) (commands.CreatedUser, error)
	UpdateUser(ctx context.Context, m commands.Meta, name string, sec commands.Secrets) (projections.User, error)
	RefreshToken(ctx context.Context, m commands.Meta, name string) (string, error)
	DeleteUser(ctx context.Context, m commands.Meta, name string) error

	CreateUserGroup(ctx context.Context, m commands.Meta, name string, spec events.UserGroupSpec) (projections.UserGroup, error)
	UpdateUserGroup(ctx context.Context, m commands.Meta, name string, patch events.UserGroupPatch) (projections.UserGroup, error)
	DeleteUserGroup(ctx context.Context, m commands.Meta, name string) error

	DecideRollout(ctx context.Context, m commands.Meta, group string, d events.RolloutDecidedV) (projections.Rollout, error)
}

// Limits of a request.
const (
	maxBody        = 1 << 20
	commandTimeout = 30 * time.Second
)

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"message": "request body over " + strconv.Itoa(maxBody) + " bytes"})
		return nil, false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": bodyReadProblem(err)})
		return nil, false
	}
	return b, true
}

// meta is the command metadata of a request; ok=false when If-Match is
// malformed (the answer is written).
func (s *Server) meta(w http.ResponseWriter, r *http.Request) (commands.Meta, bool) {
	m := commands.Meta{Actor: actor(r), IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if v := r.URL.Query().Get("dry_run"); v != "" {
		dry, err := strconv.ParseBool(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{"dry_run: true or false"}})
			return m, false
		}
		if dry {
			m.DryRun, m.DryRunGroups = true, new([]string)
		}
	}
	if len(m.IdempotencyKey) > 200 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Idempotency-Key is longer than 200 characters"})
		return m, false
	}
	if im := r.Header.Get("If-Match"); im != "" {
		v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(strings.TrimSpace(im), "W/"), `"`), 10, 64)
		if err != nil || v < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "If-Match must be a version (an ETag this API returned)"})
			return m, false
		}
		// Offset 0 is a real version, but IfVersion 0 means "no
		// precondition"; the log's first record is always a create.
		m.IfVersion = v
	}
	return m, true
}

// fail writes the answer for a command's or a query's error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var be *bodyError
	var ce *commands.Error
	switch {
	case errors.As(err, &be):
		writeJSON(w, be.status, be.body)
	case errors.As(err, &ce):
		status, body := commandError(ce)
		writeJSON(w, status, body)
	case errors.Is(err, projections.ErrDamaged), errors.Is(err, reports.ErrDamaged):
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "the manager's store is damaged; it is being rebuilt from the log; retry"})
	case errors.Is(err, context.DeadlineExceeded), temporary(err):
		s.logger.Warn("request could not complete", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "the event log or the projection is not available; retry"})
	case errors.Is(err, context.Canceled):
		// The client went away.
	default:
		s.logger.Error("request failed", "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"message": "internal error (see the manager's log)"})
	}
}

// temporary reports an error that means "try again" (an unreachable
// event log says so with Temporary() true).
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// commandError maps a refused command to Nebula's status and body: "not
// found" and "exists" are 403 with a boolean body, as in 2.7.
func commandError(e *commands.Error) (int, map[string]any) {
	key := existsKey(e.Kind)
	switch e.Code {
	case commands.CodeExists:
		return http.StatusForbidden, map[string]any{key: true}
	case commands.CodeNotFound, commands.CodeMissingApp, commands.CodeMissingCronJob, commands.CodeMissingUser:
		body := map[string]any{key: false, "message": e.Detail}
		if e.Kind == events.KindUser && e.Code == commands.CodeNotFound {
			body["user_name"] = false // 2.7's key on user update and refresh
		}
		return http.StatusForbidden, body
	case commands.CodeNotRunning:
		return http.StatusForbidden, map[string]any{"running_before_restart": false}
	case commands.CodeVersionMismatch:
		return http.StatusPreconditionFailed, map[string]any{"version_mismatch": true, "message": e.Detail}
	case commands.CodeTokenInUse:
		return http.StatusConflict, map[string]any{"token_in_use": true}
	case commands.CodeNotAtOffset:
		return http.StatusBadRequest, map[string]any{"message": e.Detail}
	case commands.CodeRolloutMoved:
		return http.StatusConflict, map[string]any{"rollout_moved": true, "message": e.Detail}
	}
	var probs []string
	if e.Cause != nil {
		probs = problems(e.Cause)
	}
	if len(probs) == 0 {
		probs = []string{e.Detail}
	}
	return http.StatusBadRequest, invalidBody(probs)
}

func existsKey(k events.Kind) string {
	switch k {
	case events.KindApp:
		return "app_exists"
	case events.KindDeviceGroup:
		return "device_group_exists"
	case events.KindCronJob:
		return "cron_job_exists"
	case events.KindUser:
		return "user_exists"
	case events.KindUserGroup:
		return "user_group_exists"
	}
	return "exists"
}

// actor names the caller in the events it causes.
func actor(r *http.Request) string {
	if id := identityOf(r); id != nil {
		return id.name
	}
	return "anonymous"
}

// name is the route's {name}: set by the router, or, on a poll ServeHTTP
// serves unrouted (its pattern pollRoute, its path in polled's form), read
// from its path again rather than set as a path value: net/http makes a
// map for a value set outside its own mux, on every poll.
func name(r *http.Request) string {
	if r.Pattern == pollRoute {
		if group, ok := polled(r); ok {
			return group
		}
	}
	return r.PathValue("name")
}

// pollHandler is the handler of pollRoute, a device's poll of its group.
func (s *Server) pollHandler() http.HandlerFunc {
	return withoutCatchUp(allow(onObject(events.KindDeviceGroup, "ro"), s.info))
}

// withETag sets the ETag of a versioned document.
func withETag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}

// command runs a mutation that answers with a document.
func command[T any](s *Server, status int, run func(ctx context.Context, m commands.Meta) (T, error), version func(T) int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, ok := s.meta(w, r)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
		defer cancel()
		doc, err := run(ctx, m)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if m.DryRun {
			s.dryRunAnswer(w, doc, *m.DryRunGroups)
			return
		}
		if version != nil {
			withETag(w, version(doc))
		}
		writeJSON(w, status, doc)
	}
}

// withBody decodes the request body with decode before running the command.
func withBody[B, T any](s *Server, status int, decode func([]byte) (B, error),
	run func(ctx context.Context, m commands.Meta, name string, body B) (T, error), version func(T) int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := readBody(w, r)
		if !ok {
			return
		}
		b, err := decode(raw)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		n := name(r)
		command(s, status, func(ctx context.Context, m commands.Meta) (T, error) { return run(ctx, m, n, b) }, version)(w, r)
	}
}

// simple runs a body-less command on the named object.
func simple[T any](s *Server, status int, run func(ctx context.Context, m commands.Meta, name string) (T, error), version func(T) int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := name(r)
		command(s, status, func(ctx context.Context, m commands.Meta) (T, error) { return run(ctx, m, n) }, version)(w, r)
	}
}

// deletion runs a delete command: 200 {}.
func deletion(s *Server, run func(ctx context.Context, m commands.Meta, name string) error) http.HandlerFunc {
	return simple(s, http.StatusOK, func(ctx context.Context, m commands.Meta, n string) (struct{}, error) {
		return struct{}{}, run(ctx, m, n)
	}, nil)
}

// readCatchUpWait bounds how long an admin read waits for this manager to
// catch up with the log; past it (the brokers unreachable, folding paused)
// it answers from the projection as it is.
const readCatchUpWait = time.Second

// caughtUp waits until this manager has folded the log up to its end as
// it is now (at most readCatchUpWait), so that an admin read shows every
// write acknowledged before it, through any manager: behind a load
// balancer, one made through another manager a moment ago. It costs a
// broker round trip, so /info, which devices poll, does not do it.
func (s *Server) caughtUp(ctx context.Context) {
	if s.storage != nil && s.storage() != nil {
		return // folding is paused (the disk is nearly full): nothing to wait for
	}
	ctx, cancel := context.WithTimeout(ctx, readCatchUpWait)
	defer cancel()
	projections.CatchUp(ctx, s.log, s.proj)
}

// get serves one document from the projection.
func get[T any](s *Server, kind events.Kind, read func(r projections.Reader, name string) (T, bool, error), version func(T) int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("at") {
			if s.past == nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "time travel is not configured on this manager"})
				return
			}
			timeTravel(s, w, r, kind, read)
			return
		}
		n := name(r)
		var doc T
		var found bool
		view := func() error {
			return s.proj.View(func(pr projections.Reader) error {
				var err error
				doc, found, err = read(pr, n)
				return err
			})
		}
		s.caughtUp(r.Context())
		err := view()
		switch {
		case err != nil:
			s.fail(w, r, err)
		case !found:
			writeJSON(w, http.StatusForbidden, map[string]any{existsKey(kind): false})
		default:
			withETag(w, version(doc))
			writeJSON(w, http.StatusOK, doc)
		}
	}
}

// list serves the names of one kind: {"<key>": [...]}.
func names(s *Server, kind events.Kind, key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var names []string
		s.caughtUp(r.Context())
		err := s.proj.View(func(pr projections.Reader) error {
			var err error
			names, err = pr.Names(kind)
			return err
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{key: names})
	}
}

func appVersion(a projections.App) int64           { return a.Version }
func groupVersion(g projections.DeviceGroup) int64 { return g.Version }
func cronVersion(c projections.CronJob) int64      { return c.Version }

func readApp(r projections.Reader, n string) (projections.App, bool, error) { return r.App(n) }
func readGroup(r projections.Reader, n string) (projections.DeviceGroup, bool, error) {
	return r.DeviceGroup(n)
}
func readCron(r projections.Reader, n string) (projections.CronJob, bool, error) { return r.CronJob(n) }

// userDoc is a user as the API shows it: never its password or token
// hashes (2.7 returned the bcrypt hashes); the token in clear only when
// this request generated it.
type userDoc struct {
	Name    string `json:"user_name"`
	Version int64  `json:"version"`
	Token   string `json:"token,omitempty"`
}

func showUser(u projections.User) userDoc { return userDoc{Name: u.Name, Version: u.Version} }

func userVersion(u userDoc) int64                    { return u.Version }
func userGroupVersion(g projections.UserGroup) int64 { return g.Version }

func readUser(r projections.Reader, n string) (userDoc, bool, error) {
	u, found, err := r.User(n)
	return showUser(u), found, err
}
func readUserGroup(r projections.Reader, n string) (projections.UserGroup, bool, error) {
	return r.UserGroup(n)
}

func secretsCreate(b []byte) (commands.Secrets, error) { return secretsBody(b, false) }
func secretsUpdate(b []byte) (commands.Secrets, error) { return secretsBody(b, true) }

// routes mounts /api/v2: every route needs authentication; each object
// route also its permission (2.7's, except that rw implies ro and deleting
// a cron job needs rw on it, not admin).
func (s *Server) routes(r chi.Router) {
	c := s.cmds
	r.Use(s.apiMiddlewares()...)
	r.Get("/status", s.status)

	apps := func(level string, h http.HandlerFunc) http.HandlerFunc {
		return allow(onObject(events.KindApp, level), h)
	}
	r.Get("/apps", names(s, events.KindApp, "apps"))
	r.Route("/apps/{name}", func(r chi.Router) {
		r.Get("/", apps("ro", get(s, events.KindApp, readApp, appVersion)))
		r.Post("/", apps("rw", withBody(s, http.StatusOK, appSpecBody, c.CreateApp, appVersion)))
		r.Delete("/", apps("rw", deletion(s, c.DeleteApp)))
		r.Post("/restart", apps("rw", simple(s, http.StatusAccepted, c.RestartApp, appVersion)))
		r.Post("/stop", apps("rw", simple(s, http.StatusAccepted, c.StopApp, appVersion)))
		r.Post("/start", apps("rw", simple(s, http.StatusAccepted, c.StartApp, appVersion)))
		r.Post("/update", apps("rw", withBody(s, http.StatusAccepted, appSpecBody, c.ReplaceApp, appVersion)))
		r.Put("/update", apps("rw", withBody(s, http.StatusAccepted, appPatchBody, c.PatchApp, appVersion)))
		r.Patch("/update", apps("rw", withBody(s, http.StatusAccepted, appPatchBody, c.PatchApp, appVersion)))
		r.Get("/history", apps("ro", s.needEvents(s.appHistory)))
		r.Post("/revert", apps("rw", s.needEvents(revert(s, c.RevertApp, appVersion))))
	})

	groups := func(level string, h http.HandlerFunc) http.HandlerFunc {
		return allow(onObject(events.KindDeviceGroup, level), h)
	}
	r.Get("/device_groups", names(s, events.KindDeviceGroup, "device_groups"))
	r.Route("/device_groups/{name}", func(r chi.Router) {
		r.Get("/", groups("ro", get(s, events.KindDeviceGroup, readGroup, groupVersion)))
		r.Post("/", groups("rw", withBody(s, http.StatusOK, groupSpecBody, c.CreateDeviceGroup, groupVersion)))
		r.Delete("/", groups("rw", deletion(s, c.DeleteDeviceGroup)))
		r.Post("/update", groups("rw", withBody(s, http.StatusAccepted, groupSpecBody, c.ReplaceDeviceGroup, groupVersion)))
		r.Put("/update", groups("rw", withBody(s, http.StatusAccepted, groupPatchBody, c.PatchDeviceGroup, groupVersion)))
		r.Patch("/update", groups("rw", withBody(s, http.StatusAccepted, groupPatchBody, c.PatchDeviceGroup, groupVersion)))
		r.Post("/prune", allow(pruning, simple(s, http.StatusAccepted, c.PruneDeviceGroup, groupVersion)))
		r.Get("/info", s.pollHandler()) // pollRoute: ServeHTTP serves it unrouted
		r.Get("/rollout", groups("ro", s.rollout))
		for _, d := range []string{events.DecisionPromote, events.DecisionPause, events.DecisionResume, events.DecisionAbort} {
			r.Post("/rollout/"+d, groups("rw", s.decideRollout(d)))
		}
		r.Post("/revert", groups("rw", s.needEvents(revert(s, c.RevertDeviceGroup, groupVersion))))
	})
	r.Post("/prune", allow(pruning, command(s, http.StatusAccepted, func(ctx context.Context, m commands.Meta) (map[string]any, error) {
		ids, err := c.PruneFleet(ctx, m)
		return map[string]any{"prune_ids": ids}, err
	}, nil)))

	crons := func(level string, h http.HandlerFunc) http.HandlerFunc {
		return allow(onObject(events.KindCronJob, level), h)
	}
	r.Get("/cron_jobs", names(s, events.KindCronJob, "cron_jobs"))
	r.Route("/cron_jobs/{name}", func(r chi.Router) {
		r.Get("/", crons("ro", get(s, events.KindCronJob, readCron, cronVersion)))
		r.Post("/", crons("rw", withBody(s, http.StatusOK, cronSpecBody, c.CreateCronJob, cronVersion)))
		r.Delete("/", crons("rw", deletion(s, c.DeleteCronJob)))
		r.Post("/update", crons("rw", withBody(s, http.StatusAccepted, cronSpecBody, c.ReplaceCronJob, cronVersion)))
		r.Put("/update", crons("rw", withBody(s, http.StatusAccepted, cronPatchBody, c.PatchCronJob, cronVersion)))
		r.Patch("/update", crons("rw", withBody(s, http.StatusAccepted, cronPatchBody, c.PatchCronJob, cronVersion)))
		r.Post("/revert", crons("rw", s.needEvents(revert(s, c.RevertCronJob, cronVersion))))
	})

	r.Get("/events", allow(admin, s.needEvents(s.listEvents)))
	r.Get("/reports", s.listReports)
	r.Post("/reports", s.ingestReport)
	r.Get("/reports/refused", allow(admin, s.refusedReports))
	r.Get("/devices", s.listDevices)
	r.Get("/devices/{id}/history", s.deviceHistory)

	r.Get("/users", names(s, events.KindUser, "users"))
	r.Route("/users/{name}", func(r chi.Router) {
		r.Get("/", allow(admin, get(s, events.KindUser, readUser, userVersion)))
		r.Post("/", allow(admin, withBody(s, http.StatusOK, secretsCreate,
			func(ctx context.Context, m commands.Meta, n string, sec commands.Secrets) (userDoc, error) {
				u, err := c.CreateUser(ctx, m, n, sec)
				d := showUser(u.User)
				d.Token = u.Token
				return d, err
			}, userVersion)))
		r.Delete("/", allow(admin, deletion(s, c.DeleteUser)))
		update := allow(admin, withBody(s, http.StatusOK, secretsUpdate,
			func(ctx context.Context, m commands.Meta, n string, sec commands.Secrets) (userDoc, error) {
				u, err := c.UpdateUser(ctx, m, n, sec)
				return showUser(u), err
			}, userVersion))
		r.Put("/update", update)
		r.Patch("/update", update)
		r.Post("/refresh", allow(admin, simple(s, http.StatusOK, func(ctx context.Context, m commands.Meta, n string) (map[string]string, error) {
			token, err := c.RefreshToken(ctx, m, n)
			return map[string]string{"token": token}, err
		}, nil)))
	})

	r.Get("/user_groups", names(s, events.KindUserGroup, "user_groups"))
	r.Route("/user_groups/{name}", func(r chi.Router) {
		r.Get("/", allow(admin, get(s, events.KindUserGroup, readUserGroup, userGroupVersion)))
		r.Post("/", allow(admin, withBody(s, http.StatusOK, userGroupSpecBody, c.CreateUserGroup, userGroupVersion)))
		r.Delete("/", allow(admin, deletion(s, c.DeleteUserGroup)))
		r.Put("/update", allow(admin, withBody(s, http.StatusOK, userGroupPatchBody, c.UpdateUserGroup, userGroupVersion)))
		r.Patch("/update", allow(admin, withBody(s, http.StatusOK, userGroupPatchBody, c.UpdateUserGroup, userGroupVersion)))
	})
}

// needEvents answers 503 when the manager has no event log reader.
func (s *Server) needEvents(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.events == nil || s.past == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "history is not configured on this manager"})
			return
		}
		h(w, r)
	}
}

// revert restores an object as it was at ?to=<offset>: 202 with the
// document, as an update.
func revert[T any](s *Server, run func(ctx context.Context, m commands.Meta, name string, to int64) (T, error), version func(T) int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		to, err := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		if err != nil || to < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{"to: the offset (version) to revert to"}})
			return
		}
		n := name(r)
		command(s, http.StatusAccepted, func(ctx context.Context, m commands.Meta) (T, error) { return run(ctx, m, n, to) }, version)(w, r)
	}
}

// dryRunAnswer is the answer of a mutation with ?dry_run=true: 200, the
// document it would make, and the device groups whose version it would
// raise with how many devices last reported in each. Nothing is appended.
// dryRunWaves says, for a group with a rollout policy, how many of its
// devices each wave would take if the change were the log's next record
// (a device's wave depends on the offset that starts the rollout).
func (s *Server) dryRunWaves(group string) []map[string]any {
	var g projections.DeviceGroup
	var found bool
	if err := s.proj.View(func(r projections.Reader) error {
		var err error
		g, found, err = r.DeviceGroup(group)
		return err
	}); err != nil || !found || g.Rollout == nil {
		return nil
	}
	devs, _, err := s.reports.Devices(reports.DeviceQuery{Group: group})
	if err != nil {
		return nil
	}
	ro := projections.Rollout{Group: group, Policy: *g.Rollout, Start: s.proj.Applied() + 1}
	out := make([]map[string]any, len(g.Rollout.Waves))
	for i, p := range g.Rollout.Waves {
		out[i] = map[string]any{"wave": i + 1, "percent": p, "devices": 0}
	}
	for _, d := range devs {
		i := ro.WaveOf(d.DeviceID, d.Labels)
		out[i]["devices"] = out[i]["devices"].(int) + 1
	}
	return out
}

func (s *Server) dryRunAnswer(w http.ResponseWriter, doc any, groups []string) {
	affected := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		entry := map[string]any{"device_group": g}
		if s.reports != nil {
			if n, err := s.reports.DeviceCount(g); err == nil {
				entry["devices"] = n
			}
			if waves := s.dryRunWaves(g); waves != nil {
				entry["rollout_waves"] = waves
			}
		}
		affected = append(affected, entry)
	}
	answer := map[string]any{"dry_run": true, "result": doc, "device_groups": affected}
	if s.reports != nil {
		answer = s.completeness(answer) // the device counts are short while it is false
	}
	writeJSON(w, http.StatusOK, answer)
}
