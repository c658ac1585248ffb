package chain

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Log is where checkpoints are appended.
type Log interface {
	Append(ctx context.Context, env events.Envelope) (int64, error)
}

// Heads says where the folded chain stands: the offset of the last folded
// record and the head after it (projections.Store).
type Heads interface {
	ChainHead() (int64, []byte, error)
}

// Checkpoint appends a signed checkpoint of the folded chain every
// interval, when the log grew since the last one, until ctx ends.
func Checkpoint(ctx context.Context, log Log, heads Heads, key ed25519.PrivateKey, keyID string, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		off, head, err := heads.ChainHead()
		if err != nil || off < 0 || off == last || len(head) == 0 {
			continue
		}
		p := Sign(key, keyID, off, head)
		env := events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: events.KindLog}, Actor: "checkpointer:" + keyID, Time: time.Now().UTC(), Payload: p}
		if _, err := log.Append(ctx, env); err != nil {
			logger.Warn("checkpoint not appended; will retry", "err", err)
			continue
		}
		last = off + 1 // the checkpoint itself is the next record
		logger.Info("checkpoint appended", "covers", off, "head", p.Head)
	}
}
