package kafkalog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// TestAppendDuringOutage: with the broker gone, Append fails with
// ErrUnavailable within the produce timeout; it never hangs.
func TestAppendDuringOutage(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	l, err := kafkalog.Open(testenv.Context(t, 30*time.Second), kafkalog.Config{Brokers: []string{b.Addr()}, ProduceTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), appEvent("web", "1")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() { _, err := l.Append(context.Background(), appEvent("web", "2")); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, kafkalog.ErrUnavailable) {
			t.Fatalf("append during an outage: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("append took %v to fail", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("append hangs while the broker is down")
	}
}
