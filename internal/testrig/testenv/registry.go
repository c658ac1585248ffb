package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a Docker registry (Debian's docker-registry) on loopback.
type Registry struct {
	Addr       string // 127.0.0.1:port
	User, Pass string
	cmd        *exec.Cmd
	config     string
	// DockerConfig is a DOCKER_CONFIG directory logged in to it.
	DockerConfig string
}

// StartRegistry runs a registry with basic auth (user, pass) until the
// test ends.
func StartRegistry(t testing.TB, user, pass string) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		SkipUnlessAvailable(t, "docker-registry not installed (make deps installs the Debian package)")
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}
http: {addr: %s}
auth: {htpasswd: {realm: nebula-test, path: %s}}
`, filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Addr: addr, User: user, Pass: pass, config: config, DockerConfig: filepath.Join(dir, "docker")}
	r.start(t, bin)
	t.Cleanup(r.Stop)
	if out, err := r.Docker("login", "-u", user, "--password-stdin", addr).stdin(pass); err != nil {
		t.Fatalf("docker login %s: %v\n%s", addr, err, out)
	}
	return r
}

func (r *Registry) start(t testing.TB, bin string) {
	t.Helper()
	r.cmd = exec.Command(bin, "serve", r.config)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s did not start: %v", r.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the registry (an outage); Restart brings it back.
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Restart starts the registry again on the same address and storage.
func (r *Registry) Restart(t testing.TB) {
	bin, _ := exec.LookPath("docker-registry")
	r.start(t, bin)
}

// Push tags image as repo (e.g. "app:1") in the registry and pushes it;
// it returns the full reference.
func (r *Registry) Push(t testing.TB, image, repo string) string {
	t.Helper()
	ref := r.Addr + "/" + repo
	Docker(t, "tag", image, ref)
	if out, err := r.Docker("push", ref).run(); err != nil {
		t.Fatalf("docker push %s: %v\n%s", ref, err, out)
	}
	return ref
}

type dockerCmd struct{ *exec.Cmd }

// Docker is the docker CLI logged in to the registry.
func (r *Registry) Docker(args ...string) dockerCmd {
	c := exec.Command("docker", args...)
	c.Env = append(os.Environ(), "DOCKER_CONFIG="+r.DockerConfig)
	return dockerCmd{c}
}

func (c dockerCmd) run() ([]byte, error) { return c.CombinedOutput() }

func (c dockerCmd) stdin(s string) ([]byte, error) {
	c.Stdin = stringReader(s)
	return c.CombinedOutput()
}
