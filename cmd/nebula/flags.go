package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// flags wraps a flag.FlagSet so that every flag has environment variable
// and config file equivalents. Precedence, highest first: the command
// line, the first environment variable set (in the order given), the
// config file (--config or NEBULA_CONFIG: a JSON object whose keys are the
// variables' names in lower case without NEBULA_, as Nebula 2.7's
// conf.json: {"basic_auth_user": "admin", "cache_time": 10}), the default.
type flags struct {
	fs   *flag.FlagSet
	errs []error

	file     map[string]string // the config file's settings
	fileName string
	known    map[string]bool // file keys some flag reads
}

func newFlags(name, usage string, args []string) *flags {
	fs := flag.NewFlagSet("nebula "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: nebula %s [flags]\n\n%s\n\nflags (environment variables in brackets; "+
			"a --config JSON file may set each under the variable's lower-case name without NEBULA_):\n", name, usage)
		fs.PrintDefaults()
	}
	f := &flags{fs: fs, known: map[string]bool{}}
	f.fileName = configArg(args)
	fs.String("config", f.fileName, "JSON config file [NEBULA_CONFIG]")
	if f.fileName != "" {
		f.file, f.errs = readConfigFile(f.fileName)
	}
	return f
}

// configArg finds --config in args (flags are parsed later), or
// NEBULA_CONFIG.
func configArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasValue {
			return value
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("NEBULA_CONFIG")
}

// readConfigFile reads a JSON object of scalar settings.
func readConfigFile(path string) (map[string]string, []error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{fmt.Errorf("config file: %w", err)}
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, []error{fmt.Errorf("config file %s is not a JSON object: %v", path, err)}
	}
	out := map[string]string{}
	var errs []error
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		case nil:
		default:
			errs = append(errs, fmt.Errorf("config file %s: %q must be a string, number or boolean", path, k))
		}
	}
	return out, errs
}

// mongoKeys are Nebula 2.7 settings of its MongoDB, which a 2.7 config
// file may hold: accepted and ignored (the event log replaces MongoDB).
var mongoKeys = map[string]bool{"mongo_url": true, "schema_name": true, "mongo_max_pool_size": true}

// fileKey is the config file key of an environment variable (its lower
// case name is accepted too: nebula_manager_host, as 2.7's worker).
func fileKey(env string) string { return strings.ToLower(strings.TrimPrefix(env, "NEBULA_")) }

// lookup returns the first of envs set to a non-empty value (an empty
// variable counts as unset, as in a compose file's "VAR="), else the
// config file's value of one of them.
func (f *flags) lookup(envs []string) (string, string, bool) {
	for _, e := range envs {
		f.known[fileKey(e)] = true
		f.known[strings.ToLower(e)] = true
	}
	for _, e := range envs {
		if v, ok := os.LookupEnv(e); ok && v != "" {
			return e, v, true
		}
	}
	for _, e := range envs {
		for _, k := range []string{strings.ToLower(e), fileKey(e)} {
			if v, ok := f.file[k]; ok {
				return f.fileName + ": " + k, v, true
			}
		}
	}
	return "", "", false
}

func envNote(usage string, envs []string) string {
	if len(envs) == 0 {
		return usage
	}
	return usage + " [" + strings.Join(envs, ", ") + "]"
}

func (f *flags) String(p *string, name, def, usage string, envs ...string) {
	if _, v, ok := f.lookup(envs); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, envNote(usage, envs))
}

func (f *flags) Bool(p *bool, name string, def bool, usage string, envs ...string) {
	if e, v, ok := f.lookup(envs); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q is not a boolean", e, v))
		}
		def = b
	}
	f.fs.BoolVar(p, name, def, envNote(usage, envs))
}

func (f *flags) Int(p *int, name string, def int, usage string, envs ...string) {
	if e, v, ok := f.lookup(envs); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q is not an integer", e, v))
		}
		def = n
	}
	f.fs.IntVar(p, name, def, envNote(usage, envs))
}

func (f *flags) Float(p *float64, name string, def float64, usage string, envs ...string) {
	if e, v, ok := f.lookup(envs); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			f.errs = append(f.errs, fmt.Errorf("%s=%q is not a number", e, v))
		}
		def = n
	}
	f.fs.Float64Var(p, name, def, envNote(usage, envs))
}

// Duration accepts Go durations ("30s") and, for the original Nebula's
// variables, plain integers meaning seconds.
func (f *flags) Duration(p *time.Duration, name string, def time.Duration, usage string, envs ...string) {
	if e, v, ok := f.lookup(envs); ok {
		d, err := parseSeconds(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", e, v, err))
		}
		def = d
	}
	f.fs.Func(name, envNote(usage+fmt.Sprintf(" (default %v)", def), envs), func(s string) error {
		d, err := parseSeconds(s)
		*p = d
		return err
	})
	*p = def
}

func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration (30s) or a number of seconds")
	}
	return d, nil
}

// Parse parses args; environment errors are reported with flag errors.
func (f *flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		f.errs = append(f.errs, fmt.Errorf("unexpected arguments: %q", f.fs.Args()))
	}
	var unknown []string
	for k := range f.file {
		if !f.known[k] && !mongoKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		var known []string
		for k := range f.known {
			known = append(known, k)
		}
		sort.Strings(known)
		f.errs = append(f.errs, fmt.Errorf("config file %s: unknown settings %q (this command reads %s)", f.fileName, unknown, strings.Join(known, ", ")))
	}
	if len(f.errs) > 0 {
		return fmt.Errorf("%w", joinErrs(f.errs))
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
