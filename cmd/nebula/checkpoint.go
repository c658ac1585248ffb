package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// loadSigningKey reads an ed25519 private key: a file holding the 32-byte
// seed in hex.
func loadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("checkpoint key %s: want the 32-byte ed25519 seed in hex (64 hex digits)", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// checkpoints appends a signed checkpoint of the hash chain every
// interval, when the log grew since the last one.
func checkpoints(ctx context.Context, log *kafkalog.Log, store *projections.Store, key ed25519.PrivateKey, keyID string, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		off, head, err := store.ChainHead()
		if err != nil || off < 0 || off == last || len(head) == 0 {
			continue
		}
		h := hex.EncodeToString(head)
		p := events.LogCheckpointedV{Covers: off, Head: h, KeyID: keyID, Signature: hex.EncodeToString(ed25519.Sign(key, events.CheckpointMessage(off, h)))}
		env := events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: events.KindLog}, Actor: "checkpointer:" + keyID, Time: time.Now().UTC(), Payload: p}
		if _, err := log.Append(ctx, env); err != nil {
			logger.Warn("checkpoint not appended; will retry", "err", err)
			continue
		}
		last = off + 1 // the checkpoint itself is the next record
		logger.Info("checkpoint appended", "covers", off, "head", h)
	}
}
