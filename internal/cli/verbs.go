package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

func run(ctx context.Context, args []string, e Env) error {
	if len(args) == 0 {
		return usageErr{fmt.Errorf("usage: nebula <%s> ...", strings.Join(Verbs, "|"))}
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "login":
		return login(ctx, rest, e)
	case "logout":
		err := os.Remove(e.credPath())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		fmt.Fprintln(e.Stdout, "logged out")
		return nil
	case "ping":
		return simpleGet(ctx, rest, e, "ping", func(*opts) (string, error) { return "/status", nil }, nil)
	case "reports":
		return reports(ctx, rest, e)
	case "devices":
		return devices(ctx, rest, e)
	case "events":
		return eventsList(ctx, rest, e)
	case "history":
		return simpleGet(ctx, rest, e, "history", func(o *opts) (string, error) {
			n, err := o.name("", "app")
			return "/apps/" + url.PathEscape(n) + "/history", err
		}, printHistory)
	case "rollout":
		return rollout(ctx, rest, e)
	case "revert":
		return revert(ctx, rest, e)
	case "prune":
		return prune(ctx, rest, e)
	case "completion":
		return completion(rest, e)
	}
	for _, r := range resources {
		if r.verb == verb {
			return r.run(ctx, rest, e)
		}
	}
	return usageErr{fmt.Errorf("unknown command %q (commands: %s)", verb, strings.Join(Verbs, ", "))}
}

// rollout shows a device group's rollout (--watch: again every 2 s until
// it settles or ctx ends), or takes a decision on it: rollout GROUP
// promote|pause|resume|abort [--revert=true|false].
func rollout(ctx context.Context, args []string, e Env) error {
	o := newOpts("rollout", e)
	watch := o.fs.Bool("watch", false, "show it again every 2 s until the rollout settles")
	revert := o.fs.String("revert", "", "with abort: serve the stable version again (true) or leave the devices as they are (false); default: the policy's auto_revert")
	if err := o.parse(args); err != nil {
		return err
	}
	n, err := o.name("", "device group")
	if err != nil {
		return err
	}
	path := "/device_groups/" + url.PathEscape(n) + "/rollout"
	if len(o.pos) > 1 {
		action := o.pos[1]
		switch action {
		case "promote", "pause", "resume", "abort":
		default:
			return usageErr{fmt.Errorf("rollout %s %s: the actions are promote, pause, resume, abort", n, action)}
		}
		q := ""
		if *revert != "" {
			q = "?revert=" + url.QueryEscape(*revert)
		}
		c, err := connect(e)
		if err != nil {
			return err
		}
		v, _, err := c.do(ctx, "POST", path+"/"+action+q, nil)
		if err != nil {
			return err
		}
		print(e.Stdout, v, *o.out)
		return nil
	}
	for {
		v, err := getAndPrint(ctx, e, path, *o.out, printRollout)
		if err != nil {
			return err
		}
		m, _ := v.(map[string]any)
		ro, _ := m["rollout"].(map[string]any)
		state, _ := ro["state"].(string)
		if !*watch || ro == nil || state != "in_progress" && state != "paused" {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
		fmt.Fprintln(e.Stdout)
	}
}

func login(ctx context.Context, args []string, e Env) error {
	o := newOpts("login", e)
	host := o.fs.String("host", "", "manager base URL, e.g. http://manager:80 (or host name with --port/--protocol)")
	port := o.fs.Int("port", 80, "manager port (with a host name)")
	protocol := o.fs.String("protocol", "http", "http or https (with a host name)")
	user := o.fs.String("username", "", "user (Basic)")
	pass := o.fs.String("password", "", "password (Basic)")
	token := o.fs.String("token", "", "token (Bearer; wins over Basic)")
	if err := o.parse(args); err != nil {
		return err
	}
	cr := credentials{Username: *user, Password: base64.StdEncoding.EncodeToString([]byte(*pass)),
		Token: base64.StdEncoding.EncodeToString([]byte(*token))}
	switch {
	case strings.Contains(*host, "://"):
		cr.HostURI = *host
	case *host != "":
		cr.Host, cr.Port, cr.Protocol = *host, *port, *protocol
	default:
		return usageErr{errors.New("--host is required")}
	}
	b, _ := json.MarshalIndent(cr, "", "  ")
	if err := os.WriteFile(e.credPath(), append(b, '\n'), 0o600); err != nil {
		return err
	}
	c, err := connect(e)
	if err != nil {
		return err
	}
	if _, _, err := c.do(ctx, "GET", "/status", nil); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "logged in to %s (credentials in %s)\n", c.base, e.credPath())
	return nil
}

// simpleGet is a verb that GETs one path; text, if set, prints its
// answer as text (the default is print's).
func simpleGet(ctx context.Context, args []string, e Env, name string, path func(*opts) (string, error), text func(io.Writer, map[string]any)) error {
	o := newOpts(name, e)
	if err := o.parse(args); err != nil {
		return err
	}
	p, err := path(o)
	if err != nil {
		return err
	}
	_, err = getAndPrint(ctx, e, p, *o.out, text)
	return err
}

// getAndPrint GETs path, prints the answer in format out (JSON, or text
// by text, or by print when text is nil) and returns it.
func getAndPrint(ctx context.Context, e Env, path, out string, text func(io.Writer, map[string]any)) (any, error) {
	c, err := connect(e)
	if err != nil {
		return nil, err
	}
	v, _, err := c.do(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok && text != nil && out != "json" {
		text(e.Stdout, m)
		return v, nil
	}
	print(e.Stdout, v, out)
	return v, nil
}

func devices(ctx context.Context, args []string, e Env) error {
	o := newOpts("devices", e)
	group := o.fs.String("device-group", "", "only this device group")
	size := o.fs.Int("page-size", 1000, "devices per page (1-10000)")
	last := o.fs.String("last-id", "", "continue after this device ID")
	if err := o.parse(args); err != nil {
		return err
	}
	if len(o.pos) > 0 {
		return usageErr{fmt.Errorf("devices takes no arguments (got %q): use --device-group", o.pos)}
	}
	_, err := getAndPrint(ctx, e, "/devices"+query("device_group", *group, "page_size", strconv.Itoa(*size), "last_id", *last), *o.out, printDevices)
	return err
}

func reports(ctx context.Context, args []string, e Env) error {
	o := newOpts("reports", e)
	size := o.fs.Int("page-size", 20, "reports per page (1-1000)")
	host := o.fs.String("hostname", "", "only this hostname")
	group := o.fs.String("device-group", "", "only this device group")
	op := o.fs.String("report-creation-time-filter", "gt", "eq, gt, lt, gte, lte, ne")
	at := o.fs.String("report-creation-time", "", "unix seconds, compared with the filter")
	last := o.fs.String("last-id", "", "continue after this report id")
	updated := o.fs.String("updated", "", "True or False")
	if err := o.parse(args); err != nil {
		return err
	}
	q := query("page_size", strconv.Itoa(*size), "hostname", *host, "device_group", *group, "last_id", *last, "updated", *updated)
	if *at != "" {
		q += map[bool]string{true: "&", false: "?"}[q != ""] + "report_creation_time=" + url.QueryEscape(*at) + "&report_creation_time_filter=" + url.QueryEscape(*op)
	}
	c, err := connect(e)
	if err != nil {
		return err
	}
	v, _, err := c.do(ctx, "GET", "/reports"+q, nil)
	if err != nil {
		return err
	}
	print(e.Stdout, v, *o.out)
	return nil
}

func eventsList(ctx context.Context, args []string, e Env) error {
	o := newOpts("events", e)
	kind := o.fs.String("kind", "", "aggregate kind (app, device_group, ...)")
	name := o.fs.String("name", "", "aggregate name")
	typ := o.fs.String("type", "", "event type (app.created, ...)")
	actor := o.fs.String("actor", "", "who")
	from := o.fs.String("from", "", "first offset")
	to := o.fs.String("to", "", "last offset")
	limit := o.fs.String("limit", "", "events per page (1-1000)")
	since := o.fs.String("since", "", "events at or after this time (RFC 3339)")
	until := o.fs.String("until", "", "events at or before this time (RFC 3339)")
	format := o.fs.String("format", "", "jsonl or csv: every event of the range, streamed, each with its hash-chain link (an audit export)")
	if err := o.parse(args); err != nil {
		return err
	}
	if *format != "" && *format != "jsonl" && *format != "csv" {
		return usageErr{fmt.Errorf("--format %q: jsonl or csv", *format)}
	}
	c, err := connect(e)
	if err != nil {
		return err
	}
	filters := []string{"kind", *kind, "name", *name, "type", *typ, "actor", *actor, "from", *from, "to", *to, "since", *since, "until", *until}
	if *format != "" {
		return c.stream(ctx, "/events"+query(append(filters, "format", *format)...), e.Stdout)
	}
	v, _, err := c.do(ctx, "GET", "/events"+query(append(filters, "limit", *limit)...), nil)
	if err != nil {
		return err
	}
	if *o.out == "json" {
		print(e.Stdout, v, "json")
		return nil
	}
	m, _ := v.(map[string]any)
	list, _ := m["events"].([]any)
	for _, x := range list {
		ev, _ := x.(map[string]any)
		agg, _ := ev["aggregate"].(map[string]any)
		fmt.Fprintf(e.Stdout, "%s\t%s\t%s %s\tby %s\t%s\n", scalar(ev["offset"]), scalar(ev["time"]), scalar(agg["kind"]), scalar(agg["name"]), scalar(ev["actor"]), scalar(ev["type"]))
	}
	if n := m["next_from"]; n != nil {
		fmt.Fprintf(e.Stdout, "more: --from %s\n", scalar(n))
	}
	return nil
}

func revert(ctx context.Context, args []string, e Env) error {
	o := newOpts("revert", e)
	to := o.fs.Int64("to", -1, "the offset (version) to restore")
	if err := o.parse(args); err != nil {
		return err
	}
	if len(o.pos) != 2 || *to < 0 {
		return usageErr{errors.New("usage: nebula revert app|device-group|cron-job NAME --to OFFSET")}
	}
	path := map[string]string{"app": "/apps/", "device-group": "/device_groups/", "cron-job": "/cron_jobs/"}[o.pos[0]]
	if path == "" {
		return usageErr{fmt.Errorf("revert %q: app, device-group or cron-job", o.pos[0])}
	}
	c, err := connect(e)
	if err != nil {
		return err
	}
	v, _, err := c.do(ctx, "POST", path+url.PathEscape(o.pos[1])+"/revert?to="+strconv.FormatInt(*to, 10), nil)
	if err != nil {
		return err
	}
	print(e.Stdout, v, *o.out)
	return nil
}

func prune(ctx context.Context, args []string, e Env) error {
	o := newOpts("prune", e)
	if err := o.parse(args); err != nil {
		return err
	}
	path := ""
	switch {
	case len(o.pos) == 1 && o.pos[0] == "all":
		path = "/prune"
	case len(o.pos) == 2 && o.pos[0] == "device-group":
		path = "/device_groups/" + url.PathEscape(o.pos[1]) + "/prune"
	default:
		return usageErr{errors.New("usage: nebula prune all | nebula prune device-group NAME")}
	}
	c, err := connect(e)
	if err != nil {
		return err
	}
	v, _, err := c.do(ctx, "POST", path, nil)
	if err != nil {
		return err
	}
	print(e.Stdout, v, *o.out)
	return nil
}

func completion(args []string, e Env) error {
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		return usageErr{errors.New("usage: nebula completion bash|zsh")}
	}
	words := strings.Join(append([]string{"dev", "manager", "worker", "reporter", "kafka", "replay", "version"}, Verbs...), " ")
	if args[0] == "bash" {
		fmt.Fprintf(e.Stdout, "complete -W %q nebula\n", words)
		return nil
	}
	fmt.Fprintf(e.Stdout, "#compdef nebula\n_nebula() { compadd %s }\ncompdef _nebula nebula\n", words)
	return nil
}

// set reports whether a flag was given.
func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
