package kafkalog_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// TestKcatReadsTheLog: a Kafka client nobody here wrote (kcat, librdkafka)
// reads the event log as the README shows, offsets, headers and payloads
// included, from the in-process broker and from `nebula kafka`.
func TestKcatReadsTheLog(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		testenv.SkipUnlessAvailable(t, "kcat not installed (make deps installs the Debian package)")
	}
	for name, setup := range map[string]brokerSetup{"in-process": inProcess, "nebula-kafka-process": separateProcess} {
		t.Run(name, func(t *testing.T) {
			addr := setup(t)
			l := open(t, addr, kafkalog.DefaultTopic)
			ctx := testenv.Context(t, 60*time.Second)
			const n = 25
			for i := range n {
				if _, err := l.Append(ctx, appEvent(fmt.Sprintf("web%d", i), fmt.Sprintf("cmd-%d", i))); err != nil {
					t.Fatal(err)
				}
			}
			kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			// -e: exit at the end of the log; one line per record.
			out, err := exec.CommandContext(kctx, kcat, "-b", addr, "-t", kafkalog.DefaultTopic, "-C", "-e", "-q",
				"-f", `%o|%h|%s\n`).CombinedOutput()
			if err != nil {
				t.Fatalf("kcat: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != n {
				t.Fatalf("kcat printed %d records, want %d:\n%s", len(lines), n, out)
			}
			for i, line := range lines {
				parts := strings.SplitN(line, "|", 3)
				if len(parts) != 3 {
					t.Fatalf("kcat line %q is not offset|headers|value", line)
				}
				if off, err := strconv.Atoi(parts[0]); err != nil || off != i {
					t.Fatalf("kcat record %d has offset %q", i, parts[0])
				}
				if want := fmt.Sprintf("%s=cmd-%d", kafkalog.HeaderCommandID, i); parts[1] != want {
					t.Fatalf("kcat record %d headers %q, want %q", i, parts[1], want)
				}
				env, err := events.Decode([]byte(parts[2]))
				if err != nil {
					t.Fatalf("kcat record %d value does not decode: %v\n%s", i, err, parts[2])
				}
				if env.Aggregate.Name != fmt.Sprintf("web%d", i) || env.Type != events.AppRestarted {
					t.Fatalf("kcat record %d is %s %s", i, env.Type, env.Aggregate)
				}
			}
		})
	}
}
