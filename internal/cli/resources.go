package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// resource is a kind of object with the usual verbs.
type resource struct {
	verb, path, flagName, what string
	actions                    []string                    // beyond list, info, create, update, delete
	flags                      func(fs *flag.FlagSet) body // the body options of create and update
}

// body builds a request body from the flags that were given (all of
// them, with defaults, for a create).
type body func(fs *flag.FlagSet, create bool) (map[string]any, error)

var resources = []resource{
	{verb: "apps", path: "/apps/", flagName: "app", what: "app", actions: []string{"start", "stop", "restart"}, flags: appFlags},
	{verb: "device-groups", path: "/device_groups/", flagName: "device-group", what: "device group", actions: []string{"rollout"}, flags: groupFlags},
	{verb: "cron-jobs", path: "/cron_jobs/", flagName: "cron-job", what: "cron job", flags: cronFlags},
	{verb: "users", path: "/users/", flagName: "user", what: "user", actions: []string{"refresh"}, flags: userFlags},
	{verb: "user-groups", path: "/user_groups/", flagName: "group", what: "user group", flags: userGroupFlags},
}

func (r resource) run(ctx context.Context, args []string, e Env) error {
	actions := append([]string{"list", "info", "create", "update", "delete"}, r.actions...)
	if len(args) == 0 {
		return usageErr{fmt.Errorf("usage: nebula %s %s [NAME] [options]", r.verb, strings.Join(actions, "|"))}
	}
	action, rest := args[0], args[1:]
	o := newOpts(r.verb+" "+action, e)
	nameFlag := o.fs.String(r.flagName, "", r.what+" name")
	yes := o.fs.Bool("yes", false, "confirm a delete")
	force := o.fs.Bool("force", false, "update: replace the whole object (options not given take their defaults)")
	dry := o.fs.Bool("dry-run", false, "show what the change would do; change nothing")
	build := r.flags(o.fs)
	if err := o.parse(rest); err != nil {
		return err
	}
	c, err := connect(e)
	if err != nil {
		return err
	}
	do := func(method, path string, b any) error {
		if *dry && method != "GET" {
			path += map[bool]string{true: "&", false: "?"}[strings.Contains(path, "?")] + "dry_run=true"
		}
		v, _, err := c.do(ctx, method, path, b)
		if err != nil {
			return err
		}
		print(e.Stdout, v, *o.out)
		return nil
	}
	if action == "list" {
		return do("GET", strings.TrimSuffix(r.path, "/"), nil)
	}
	known := false
	for _, a := range actions {
		known = known || a == action
	}
	if !known {
		return usageErr{fmt.Errorf("nebula %s %s: unknown action (%s)", r.verb, action, strings.Join(actions, ", "))}
	}
	name, err := o.name(*nameFlag, r.what)
	if err != nil {
		return err
	}
	p := r.path + url.PathEscape(name)
	switch action {
	case "info":
		return do("GET", p, nil)
	case "delete":
		if !*yes && !*dry {
			return usageErr{fmt.Errorf("deleting %s %q: add --yes to confirm", r.what, name)}
		}
		return do("DELETE", p, nil)
	case "create":
		b, err := build(o.fs, true)
		if err != nil {
			return usageErr{err}
		}
		return do("POST", p, b)
	case "update":
		b, err := build(o.fs, *force)
		if err != nil {
			return usageErr{err}
		}
		if len(b) == 0 && !*force {
			return usageErr{errors.New("nothing to update: give the options to change")}
		}
		if *force && r.verb != "users" && r.verb != "user-groups" {
			return do("POST", p+"/update", b)
		}
		return do("PATCH", p+"/update", b)
	case "rollout":
		return do("GET", p+"/rollout", nil)
	default: // start, stop, restart, refresh
		return do("POST", p+"/"+action, nil)
	}
}

func csv(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kv parses "k=v,k2=v2" (or nebulactl's "k:v").
func kv(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range csv(s) {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			k, v, ok = strings.Cut(p, ":")
		}
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", p)
		}
		out[k] = v
	}
	return out, nil
}

// ports parses "80,8443:443": a plain port, or host:container (2.7's CLI
// could not express plain ports).
func ports(s string) ([]any, error) {
	out := []any{}
	for _, p := range csv(s) {
		if h, c, ok := strings.Cut(p, ":"); ok {
			out = append(out, map[string]string{h: c})
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("port %q is not a number or host:container", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// fields collects given flags into a body.
type fields struct {
	fs     *flag.FlagSet
	create bool
	out    map[string]any
	err    error
}

func (f *fields) str(flagName, key string, v *string) {
	if f.create && *v != "" || set(f.fs, flagName) {
		f.out[key] = *v
	}
}

func (f *fields) list(flagName, key string, v *string) {
	if set(f.fs, flagName) {
		f.out[key] = csv(*v)
	}
}

// flip is a --x/--no-x pair.
func (f *fields) flip(on, off, key string, onV, offV *bool) {
	switch {
	case set(f.fs, on) && *onV:
		f.out[key] = true
	case set(f.fs, off) && *offV:
		f.out[key] = false
	}
}

// runtimeFlags are the options apps and cron jobs share: image, env,
// networks, volumes, devices, running, privileged.
func runtimeFlags(fs *flag.FlagSet) func(f *fields) error {
	image := fs.String("image", "", "docker image")
	env := fs.String("env", "", "env vars: K=V,K2=V2")
	nets := fs.String("networks", "", "networks: nebula,bridge")
	vols := fs.String("volumes", "", "volumes: /host:/container[:ro],...")
	devs := fs.String("devices", "", "devices: /dev/x[:/dev/y[:rwm]],...")
	running, stopped := fs.Bool("running", false, "running"), fs.Bool("stopped", false, "stopped")
	priv, unpriv := fs.Bool("privileged", false, "privileged"), fs.Bool("unprivileged", false, "not privileged")
	return func(f *fields) error {
		f.str("image", "docker_image", image)
		if set(f.fs, "env") {
			m, err := kv(*env)
			if err != nil {
				return err
			}
			f.out["env_vars"] = m
		}
		f.list("networks", "networks", nets)
		f.list("volumes", "volumes", vols)
		f.list("devices", "devices", devs)
		f.flip("running", "stopped", "running", running, stopped)
		f.flip("privileged", "unprivileged", "privileged", priv, unpriv)
		return nil
	}
}

func appFlags(fs *flag.FlagSet) body {
	runtime := runtimeFlags(fs)
	sp := fs.String("starting-ports", "", "ports: 80,8443:443 (host:container)")
	cp := fs.String("containers-per", "", "server:N, instance:N, cpu:N or memory:MB")
	roll, noRoll := fs.Bool("rolling", false, "rolling restarts"), fs.Bool("no-rolling", false, "all-at-once restarts")
	return func(fs *flag.FlagSet, create bool) (map[string]any, error) {
		f := &fields{fs: fs, create: create, out: map[string]any{}}
		if err := runtime(f); err != nil {
			return nil, err
		}
		if set(fs, "starting-ports") {
			p, err := ports(*sp)
			if err != nil {
				return nil, err
			}
			f.out["starting_ports"] = p
		}
		if set(fs, "containers-per") {
			k, v, ok := strings.Cut(*cp, ":")
			n, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("--containers-per %q: want kind:number", *cp)
			}
			f.out["containers_per"] = map[string]float64{k: n}
		}
		f.flip("rolling", "no-rolling", "rolling_restart", roll, noRoll)
		return f.out, nil
	}
}

func groupFlags(fs *flag.FlagSet) body {
	apps := fs.String("apps", "", "apps: a,b")
	crons := fs.String("cron-jobs", "", "cron jobs: c,d")
	rollout := fs.String("rollout", "", `rollout policy, JSON: '{"waves": [5, 25, 100], "min_healthy_time": "60s"}' (docs/rollouts.md)`)
	return func(fs *flag.FlagSet, create bool) (map[string]any, error) {
		f := &fields{fs: fs, create: create, out: map[string]any{}}
		f.list("apps", "apps", apps)
		f.list("cron-jobs", "cron_jobs", crons)
		if set(fs, "rollout") {
			var p map[string]any
			if err := json.Unmarshal([]byte(*rollout), &p); err != nil || p == nil {
				return nil, usageErr{fmt.Errorf("--rollout: a JSON object, e.g. '{\"waves\": [10, 100]}'")}
			}
			f.out["rollout"] = p
		}
		return f.out, nil
	}
}

func cronFlags(fs *flag.FlagSet) body {
	runtime := runtimeFlags(fs)
	schedule := fs.String("schedule", "", "cron schedule: '*/5 * * * *'")
	return func(fs *flag.FlagSet, create bool) (map[string]any, error) {
		f := &fields{fs: fs, create: create, out: map[string]any{}}
		f.str("schedule", "schedule", schedule)
		return f.out, runtime(f)
	}
}

func userFlags(fs *flag.FlagSet) body {
	pass := fs.String("password", "", "password")
	token := fs.String("token", "", "token")
	return func(fs *flag.FlagSet, create bool) (map[string]any, error) {
		f := &fields{fs: fs, out: map[string]any{}}
		f.str("password", "password", pass)
		f.str("token", "token", token)
		return f.out, nil
	}
}

func userGroupFlags(fs *flag.FlagSet) body {
	members := fs.String("members", "", "users: alice,bob")
	apps := fs.String("apps", "", "app permissions: web:rw,db:ro")
	groups := fs.String("device-groups", "", "device group permissions: edge:ro")
	crons := fs.String("cron-jobs", "", "cron job permissions: backup:rw")
	pruning, noPruning := fs.Bool("pruning", false, "may prune"), fs.Bool("no-pruning", false, "may not prune")
	admin, noAdmin := fs.Bool("admin", false, "admin"), fs.Bool("no-admin", false, "not admin")
	return func(fs *flag.FlagSet, create bool) (map[string]any, error) {
		f := &fields{fs: fs, out: map[string]any{}}
		f.list("members", "group_members", members)
		for flagName, key := range map[string]string{"apps": "apps", "device-groups": "device_groups", "cron-jobs": "cron_jobs"} {
			v := map[string]*string{"apps": apps, "device-groups": groups, "cron-jobs": crons}[flagName]
			if set(fs, flagName) {
				m, err := kv(*v)
				if err != nil {
					return nil, err
				}
				f.out[key] = m
			}
		}
		f.flip("pruning", "no-pruning", "pruning_allowed", pruning, noPruning)
		f.flip("admin", "no-admin", "admin", admin, noAdmin)
		return f.out, nil
	}
}
