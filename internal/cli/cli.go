// Package cli is the operator's command line: the verbs of Nebula 2.7's
// nebulactl (login, ping, apps, device-groups, cron-jobs, users,
// user-groups, prune, reports) with its bugs fixed, plus events,
// history, revert and rollout. It talks to a manager over HTTP.
//
// Exit codes: 0 done; 1 the manager refused (its answer is printed);
// 2 bad usage; 3 no manager reachable or no credentials.
package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitRefused     = 1
	ExitUsage       = 2
	ExitUnreachable = 3
)

// Env is what the CLI reads from its environment (tests pass their own).
type Env struct {
	Getenv func(string) string
	Home   string
	Stdout io.Writer
	Stderr io.Writer
	Client *http.Client
}

// Verbs are the CLI's top-level words.
var Verbs = []string{"login", "logout", "ping", "apps", "device-groups", "cron-jobs", "users", "user-groups", "prune",
	"reports", "devices", "events", "history", "revert", "rollout", "completion"}

// credentials is ~/.nebula.json, in nebulactl's format (secrets base64).
type credentials struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"` // base64
	Token    string `json:"token,omitempty"`    // base64
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	HostURI  string `json:"host_uri,omitempty"`
}

func (e Env) credPath() string {
	if p := e.Getenv("NEBULA_CREDENTIALS_FILE"); p != "" {
		return p
	}
	return filepath.Join(e.Home, ".nebula.json")
}

type usageErr struct{ error }
type refusedErr struct{ error }
type unreachableErr struct{ error }

// Run runs one CLI command and returns its exit code.
func Run(ctx context.Context, args []string, e Env) int {
	if e.Client == nil {
		e.Client = &http.Client{Timeout: 60 * time.Second}
	}
	err := run(ctx, args, e)
	var u usageErr
	var r refusedErr
	var n unreachableErr
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		fmt.Fprintln(e.Stderr, "nebula:", err)
		return ExitUsage
	case errors.As(err, &r):
		fmt.Fprintln(e.Stderr, "nebula:", err)
		return ExitRefused
	case errors.As(err, &n):
		fmt.Fprintln(e.Stderr, "nebula:", err)
		return ExitUnreachable
	default:
		fmt.Fprintln(e.Stderr, "nebula:", err)
		return ExitRefused
	}
}

// opts is a verb's flags, parsed wherever they are among the words.
type opts struct {
	fs  *flag.FlagSet
	out *string
	pos []string
}

func newOpts(name string, e Env) *opts {
	fs := flag.NewFlagSet("nebula "+name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	o := &opts{fs: fs}
	o.out = fs.String("o", "text", "output: text or json")
	return o
}

func (o *opts) parse(args []string) error {
	var flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.pos = append(o.pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := o.fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if err := o.fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr{err}
	}
	if *o.out != "text" && *o.out != "json" {
		return usageErr{fmt.Errorf("-o %q: text or json", *o.out)}
	}
	return nil
}

// name returns the object name: the flag if given, else the first
// positional word.
func (o *opts) name(flagValue, what string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if len(o.pos) > 0 {
		return o.pos[0], nil
	}
	return "", usageErr{fmt.Errorf("which %s? give its name", what)}
}

// client is a manager with credentials.
type client struct {
	e     Env
	base  string
	user  string
	pass  string
	token string
}

// connect finds the manager and the credentials: NEBULA_HOST,
// NEBULA_USERNAME, NEBULA_PASSWORD, NEBULA_TOKEN first, then the
// credentials file of `nebula login`.
func connect(e Env) (*client, error) {
	c := &client{e: e, base: e.Getenv("NEBULA_HOST"), user: e.Getenv("NEBULA_USERNAME"), pass: e.Getenv("NEBULA_PASSWORD"), token: e.Getenv("NEBULA_TOKEN")}
	if b, err := os.ReadFile(e.credPath()); err == nil {
		var cr credentials
		if err := json.Unmarshal(b, &cr); err != nil {
			return nil, usageErr{fmt.Errorf("%s is not a credentials file (nebula login writes one): %v", e.credPath(), err)}
		}
		if c.base == "" {
			c.base = cr.HostURI
			if c.base == "" && cr.Host != "" {
				c.base = fmt.Sprintf("%s://%s:%d", orDefault(cr.Protocol, "http"), cr.Host, orInt(cr.Port, 80))
			}
		}
		if c.user == "" && c.token == "" {
			c.user = cr.Username
			p, _ := base64.StdEncoding.DecodeString(cr.Password)
			t, _ := base64.StdEncoding.DecodeString(cr.Token)
			c.pass, c.token = string(p), string(t)
		}
	}
	if c.base == "" {
		return nil, unreachableErr{errors.New("no manager: run `nebula login --host http://manager:80 ...` or set NEBULA_HOST")}
	}
	c.base = strings.TrimRight(c.base, "/")
	return c, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orInt(n, d int) int {
	if n == 0 {
		return d
	}
	return n
}

// do sends a request and returns the decoded answer; a non-2xx answer is
// a refusedErr with the manager's body.
// stream copies the body of GET path to w as it arrives (an export).
func (c *client) stream(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v2"+path, nil)
	if err != nil {
		return usageErr{err}
	}
	c.authorize(req)
	resp, err := c.e.Client.Do(req)
	if err != nil {
		return unreachableErr{fmt.Errorf("manager %s: %v", c.base, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusUnauthorized {
			return unreachableErr{fmt.Errorf("GET %s: 401: wrong or missing credentials (nebula login, or NEBULA_TOKEN)", path)}
		}
		return refusedErr{fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(raw))}
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func (c *client) authorize(req *http.Request) {
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.pass)
	}
}

func (c *client) do(ctx context.Context, method, path string, body any) (any, int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v2"+path, rd)
	if err != nil {
		return nil, 0, usageErr{err}
	}
	req.Header.Set("Content-Type", "application/json")
	c.authorize(req)
	resp, err := c.e.Client.Do(req)
	if err != nil {
		return nil, 0, unreachableErr{fmt.Errorf("manager %s: %v", c.base, err)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			v = string(raw)
		}
	}
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusUnauthorized {
			return v, resp.StatusCode, unreachableErr{fmt.Errorf("%s %s: 401: wrong or missing credentials (nebula login, or NEBULA_TOKEN)", method, path)}
		}
		return v, resp.StatusCode, refusedErr{fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, compact(v))}
	}
	return v, resp.StatusCode, nil
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// print writes an answer: JSON as is with -o json, else "key: value"
// lines (lists one item per line).
func print(w io.Writer, v any, format string) {
	if format == "json" {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(w, string(b))
		return
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if l, ok := x[k].([]any); ok && len(x) == 1 {
				for _, item := range l {
					fmt.Fprintln(w, scalar(item))
				}
				return
			}
			fmt.Fprintf(w, "%s: %s\n", k, scalar(x[k]))
		}
	case nil:
	default:
		fmt.Fprintln(w, scalar(v))
	}
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return compact(v)
}

// query builds a query string from non-empty values.
func query(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
