// Package chain is the event log's hash chain and its signed checkpoints:
// the one definition of both, used by the fold (which stores the chain
// head after every record and checks each checkpoint against it), by
// `nebula events verify` (which recomputes the chain from Kafka or from an
// export, offline), and by the manager's checkpointer (which signs the
// head it has folded and appends it as a log.checkpointed event).
//
// head(off) = SHA-256(head(off-1) || off as 8 bytes big-endian || record
// value), with head(-1) empty. A checkpoint signs
// "nebula-checkpoint\x00<covers>\x00<head hex>" with ed25519.
package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Hasher extends the chain; one Hasher reuses its hash state (it is not
// safe for concurrent use).
type Hasher struct {
	h   hash.Hash
	off [8]byte
}

// NewHasher returns a Hasher.
func NewHasher() *Hasher { return &Hasher{h: sha256.New()} }

// Next is the chain head after the record at off holding value, given
// the head before it (nil before offset 0).
func (c *Hasher) Next(prev []byte, off int64, value []byte) []byte {
	return c.AppendNext(nil, prev, off, value)
}

// AppendNext appends the chain head after the record at off to dst (a
// replay keeps a batch's heads in one buffer, not one each).
func (c *Hasher) AppendNext(dst, prev []byte, off int64, value []byte) []byte {
	c.h.Reset()
	c.h.Write(prev)
	binary.BigEndian.PutUint64(c.off[:], uint64(off))
	c.h.Write(c.off[:])
	c.h.Write(value)
	return c.h.Sum(dst)
}

// Message is what a checkpoint's signature covers.
func Message(covers int64, head string) []byte {
	return fmt.Appendf(nil, "nebula-checkpoint\x00%d\x00%s", covers, head)
}

// Sign is the checkpoint of the chain head after offset covers, signed
// with key under keyID.
func Sign(key ed25519.PrivateKey, keyID string, covers int64, head []byte) events.LogCheckpointedV {
	h := hex.EncodeToString(head)
	return events.LogCheckpointedV{Covers: covers, Head: h, KeyID: keyID, Signature: hex.EncodeToString(ed25519.Sign(key, Message(covers, h)))}
}

// SignedBy reports whether p's signature is key's.
func SignedBy(key ed25519.PublicKey, p events.LogCheckpointedV) bool {
	sig, err := hex.DecodeString(p.Signature)
	return err == nil && ed25519.Verify(key, Message(p.Covers, p.Head), sig)
}

// Verifier recomputes the chain over records given in log order and
// checks every checkpoint among them: its head, and its signature when a
// public key is given.
type Verifier struct {
	key         ed25519.PublicKey
	hasher      *Hasher
	prev        []byte
	heads       map[int64]string
	next        int64 // the offset expected next
	lastGood    int64 // covers of the last checkpoint that matched
	checkpoints int
}

// NewVerifier returns a verifier starting at offset 0; key may be nil
// (heads are checked, signatures not).
func NewVerifier(key ed25519.PublicKey) *Verifier {
	return &Verifier{key: key, hasher: NewHasher(), heads: map[int64]string{}, lastGood: -1}
}

// Records is how many records were verified.
func (v *Verifier) Records() int64 { return v.next }

// Checkpoints is how many checkpoints matched.
func (v *Verifier) Checkpoints() int { return v.checkpoints }

// Head is the chain head after the last record verified.
func (v *Verifier) Head() []byte { return v.prev }

// Covered is the last offset a matching checkpoint covers (-1: none).
func (v *Verifier) Covered() int64 { return v.lastGood }

// Record verifies the record at off; an error says how the log is not
// as written and signed.
func (v *Verifier) Record(off int64, raw []byte) error {
	if off != v.next {
		return fmt.Errorf("offset %d follows offset %d: records are missing", off, v.next-1)
	}
	v.prev = v.hasher.Next(v.prev, off, raw)
	v.heads[off] = hex.EncodeToString(v.prev)
	v.next = off + 1
	env, err := events.Decode(raw)
	if err != nil {
		return fmt.Errorf("the record at offset %d is unreadable (%v): changed after it was written?", off, err)
	}
	p, ok := env.Payload.(events.LogCheckpointedV)
	if !ok {
		return nil
	}
	where := fmt.Sprintf("between offsets %d and %d", v.lastGood+1, p.Covers)
	if head, known := v.heads[p.Covers]; !known || head != p.Head {
		return fmt.Errorf("the checkpoint at offset %d (key %s) does not match the log up to offset %d: a record %s was changed or removed", off, p.KeyID, p.Covers, where)
	}
	if v.key != nil && !SignedBy(v.key, p) {
		return fmt.Errorf("the checkpoint at offset %d is not signed by the given key", off)
	}
	v.lastGood = p.Covers
	v.checkpoints++
	return nil
}
