package kafka

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/internal/testenv"
)

// TestComposeFile: the compose file is valid (docker-compose resolves it)
// and keeps the durability settings the README promises.
func TestComposeFile(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		testenv.SkipUnlessAvailable(t, "docker-compose not installed (Debian package docker-compose)")
	}
	out, err := exec.Command(bin, "-f", "compose.yaml", "config").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	cfg := string(out)
	for _, want := range []string{"KAFKA_DEFAULT_REPLICATION_FACTOR: 3", "KAFKA_MIN_INSYNC_REPLICAS: 2",
		`KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE: "false"`, "kafka1:", "kafka2:", "kafka3:"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("resolved compose config lacks %q:\n%s", want, cfg)
		}
	}
}
