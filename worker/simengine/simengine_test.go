package simengine_test

import (
	"context"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/worker/enginetest"
	"github.com/nebula-orchestrator/nebula-go/worker/simengine"
)

// TestConformance: the simulated engine passes the suite the Docker
// adapter passes.
func TestConformance(t *testing.T) {
	e := simengine.New()
	const image = "registry.local/web:1"
	if err := e.Pull(context.Background(), image, nil); err != nil {
		t.Fatal(err)
	}
	enginetest.Run(t, e, image, nil)
}
