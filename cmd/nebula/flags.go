package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// flags wraps a flag.FlagSet so that every flag has environment variable
// equivalents: the first variable set (in the order given) overrides the
// built-in default, and the command line overrides both.
type flags struct {
	fs   *flag.FlagSet
	errs []error
}

func newFlags(name, usage string) *flags {
	fs := flag.NewFlagSet("nebula "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: nebula %s [flags]\n\n%s\n\nflags (environment variables in brackets):\n", name, usage)
		fs.PrintDefaults()
	}
	return &flags{fs: fs}
}

// lookup returns the first of envs set to a non-empty value (an empty
// variable counts as unset, as in a compose file's "VAR=").
func (f *flags) lookup(envs []string) (string, string, bool) {
	for _, e := range envs {
		if v, ok := os.LookupEnv(e); ok && v != "" {
			return e, v, true
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
