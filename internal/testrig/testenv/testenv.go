// Package testenv starts the real parts integration tests run against: the
// embedded broker in-process, the nebula binary as a separate process, and
// the rule that a test which cannot find what it needs fails under CI
// instead of skipping.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/broker"
)

// InCI reports whether the tests run under CI (CI=true), where nothing may
// be skipped for want of a dependency.
func InCI() bool { return os.Getenv("CI") != "" && os.Getenv("CI") != "false" }

// SkipUnlessAvailable skips the test when a dependency is missing, and
// fails it instead under CI.
func SkipUnlessAvailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and a required dependency is missing: %s", msg)
	}
	t.Skip(msg)
}

// StartBroker starts an in-process embedded broker on a free loopback port
// with its data in dir ("" = memory) and closes it when the test ends.
func StartBroker(t testing.TB, dir string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// StartBrokerAt starts an in-process broker on a given address.
func StartBrokerAt(t testing.TB, addr, dir string) *broker.Broker {
	t.Helper()
	var b *broker.Broker
	var err error
	// The port was just released by a previous broker; give the kernel a
	// moment if it is still in use.
	for i := 0; i < 50; i++ {
		if b, err = broker.Start(broker.Config{Listen: addr, DataDir: dir}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start broker at %s: %v", addr, err)
	}
	t.Cleanup(b.Close)
	return b
}

// builds are the binaries of cmd/nebula built so far, by build tags.
var builds struct {
	sync.Mutex
	path map[string]string
	err  map[string]error
}

// Binary builds cmd/nebula once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	return build(t, "")
}

// AgentBinary builds cmd/nebula with -tags agent (the device agent alone,
// as make agent builds bin/nebula-agent) once per test process and
// returns its path.
func AgentBinary(t testing.TB) string {
	t.Helper()
	return build(t, "agent")
}

func build(t testing.TB, tags string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if builds.path == nil {
		builds.path, builds.err = map[string]string{}, map[string]error{}
	}
	if _, done := builds.path[tags]; !done {
		path, err := func() (string, error) {
			dir, err := os.MkdirTemp("", "nebula-bin-")
			if err != nil {
				return "", err
			}
			path := filepath.Join(dir, "nebula")
			cmd := exec.Command("go", "build", "-tags", tags, "-o", path, "./cmd/nebula")
			cmd.Dir = moduleRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("go build -tags %q ./cmd/nebula: %v\n%s", tags, err, out)
			}
			return path, nil
		}()
		builds.path[tags], builds.err[tags] = path, err
	}
	if err := builds.err[tags]; err != nil {
		t.Fatal(err)
	}
	return builds.path[tags]
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..") // internal/testrig/testenv
}

// Process is a nebula subcommand running as a child process.
type Process struct {
	Cmd    *exec.Cmd
	mu     sync.Mutex
	output strings.Builder
	lines  chan string
	done   chan struct{}
}

// Start runs `nebula args...`, stops it (SIGTERM, then SIGKILL) when the
// test ends, and keeps its combined output for failure messages. A
// manager gets RecordKeySeed as its record key unless env gives one (or
// NEBULA_UNSIGNED_RECORDS).
func Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	if len(args) > 0 && args[0] == "manager" && !slices.ContainsFunc(env, func(e string) bool {
		return strings.HasPrefix(e, "NEBULA_RECORD_KEY") || strings.HasPrefix(e, "NEBULA_UNSIGNED_RECORDS=")
	}) {
		env = append(slices.Clip(env), "NEBULA_RECORD_KEY_SEED="+RecordKeySeed())
	}
	return StartProgram(t, Binary(t), env, nil, args...)
}

// RecordKeySeed is the tests' record key (the same in every test, so that
// the managers of one test agree), in hex.
func RecordKeySeed() string {
	seed := sha256.Sum256([]byte("nebula test record key"))
	return hex.EncodeToString(seed[:])
}

// StartProgram is Start for any program; onLine, when set, is called with
// every line of its output, in order.
func StartProgram(t testing.TB, path string, env []string, onLine func(string), args ...string) *Process {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &Process{Cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", filepath.Base(path), args, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if onLine != nil {
				onLine(sc.Text())
			}
			p.mu.Lock()
			p.output.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("output of %s %v:\n%s", filepath.Base(path), args, p.Output())
		}
	})
	return p
}

// WaitLine waits for an output line matching re and returns its submatches.
func (p *Process) WaitLine(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-p.done:
			t.Fatalf("nebula exited (%v) before printing %q:\n%s", p.Cmd.ProcessState, re, p.Output())
		case <-deadline:
			t.Fatalf("nebula did not print %q within %v:\n%s", re, timeout, p.Output())
		}
	}
}

// Output is everything the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// Stop sends SIGTERM and waits up to grace, then kills. It returns whether
// the process exited by itself within grace.
func (p *Process) Stop(grace time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		p.Kill()
		return false
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Context returns a context bounded by d and the test's end.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// WriteJunk writes 16 KiB of random bytes (at most half the file) into
// the middle of a file: the damage a disk or a stray process does to a
// store's table.
func WriteJunk(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	junk := make([]byte, min(16<<10, fi.Size()/2))
	_, _ = rand.Read(junk)
	_, err = f.WriteAt(junk, fi.Size()/4)
	return err
}
