package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireDocker skips the test (fails it in CI) when no Docker daemon
// answers.
func RequireDocker(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		SkipUnlessAvailable(t, "no Docker daemon: %v %s", err, out)
	}
}

var (
	imageMu    sync.Mutex
	imageBuilt = map[string]error{}
)

// TestImageLabel marks the images TestImage builds.
const TestImageLabel = "nebula.test.image=true"

// TestImage builds (once per test process) an image tagged tag holding
// the test app (a static binary in a FROM scratch image, so no registry is
// needed), with a HEALTHCHECK when healthcheck is true (every second; two
// failures in a row, each given 5 s: a machine busy with CI must not fail
// a healthy app's check).
// Extra labels ("key=value") are added to the image.
func TestImage(t testing.TB, tag string, healthcheck bool, labels ...string) string {
	t.Helper()
	RequireDocker(t)
	imageMu.Lock()
	defer imageMu.Unlock()
	if err, done := imageBuilt[tag]; done {
		if err != nil {
			t.Fatal(err)
		}
		return tag
	}
	err := buildImage(tag, healthcheck, labels)
	imageBuilt[tag] = err
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func buildImage(tag string, healthcheck bool, labels []string) error {
	dir, err := os.MkdirTemp("", "nebula-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "testapp"), "./internal/testrig/testenv/testapp")
	build.Dir = moduleRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the test app: %v\n%s", err, out)
	}
	// A file holding the tag makes each tag's image distinct.
	if err := os.WriteFile(filepath.Join(dir, "tag"), []byte(tag), 0o644); err != nil {
		return err
	}
	df := "FROM scratch\nCOPY testapp /testapp\nCOPY tag /tag\nENTRYPOINT [\"/testapp\"]\n"
	if healthcheck {
		df += "HEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD [\"/testapp\", \"health\"]\n"
	}
	df += "LABEL " + TestImageLabel + "\n"
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		df += fmt.Sprintf("LABEL %s=%q\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	out, err := exec.Command("docker", "build", "-q", "-t", tag, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker build %s: %v\n%s", tag, err, out)
	}
	return nil
}

// Docker runs the docker CLI and returns its trimmed output.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// RemoveContainersLabelled removes, when the test ends, every container
// with the label.
func RemoveContainersLabelled(t testing.TB, label string) {
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
	})
}

func stringReader(s string) *strings.Reader { return strings.NewReader(s) }
