package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// LinkVerifier checks an export of part of the log (the audit export:
// GET /api/v2/events?format=jsonl), whose lines each carry the chain
// before and after their record. Each record must hash, from the chain
// before it, to the chain after it; consecutive records form a run, whose
// records are recomputed from the run's first chain on. A checkpoint
// (exported too: kind=log) whose signed head is the recomputed chain at
// the offset it covers proves its run's records up to that offset as
// written: a run starting from a forged chain could not end at a signed
// head. Lines may come in any order of runs (several exports
// concatenated), each run in order.
type LinkVerifier struct {
	key         ed25519.PublicKey
	hasher      *Hasher
	heads       map[int64][]byte
	runOf       map[int64]int
	runs        []LinkRun
	checkpoints []checkpointAt
	last        int64 // the offset of the line before, -1 at a run's end
	lines       int
	unchecked   int
}

// LinkRun is a run of consecutive records of an export; Signed is the
// last offset of it a matching checkpoint covers (-1: none).
type LinkRun struct {
	From, To, Signed int64
}

type checkpointAt struct {
	offset int64
	p      events.LogCheckpointedV
}

// NewLinkVerifier returns a verifier; key may be nil (heads are checked,
// signatures not).
func NewLinkVerifier(key ed25519.PublicKey) *LinkVerifier {
	return &LinkVerifier{key: key, hasher: NewHasher(), heads: map[int64][]byte{}, runOf: map[int64]int{}, last: -1}
}

// Line checks one exported record: its bytes (nil when the export left
// them out: users' records hold secrets' hashes), and the chain before
// and after it (hex).
func (v *LinkVerifier) Line(off int64, raw []byte, prevHex, headHex string) error {
	v.lines++
	if raw == nil {
		v.unchecked++
		v.last = -1 // a run cannot go through a record it cannot hash
		return nil
	}
	prev, err := hex.DecodeString(prevHex)
	if err != nil {
		return fmt.Errorf("offset %d: the chain before it is not hex", off)
	}
	if v.last >= 0 && off == v.last+1 {
		if !bytes.Equal(prev, v.heads[v.last]) {
			return fmt.Errorf("offset %d: the chain before it is not the chain after offset %d: the export was changed", off, v.last)
		}
	} else {
		v.runs = append(v.runs, LinkRun{From: off, To: off, Signed: -1})
	}
	head := v.hasher.Next(prev, off, raw)
	if hex.EncodeToString(head) != headHex {
		return fmt.Errorf("offset %d: its record does not hash to the chain exported with it: the record or the export was changed", off)
	}
	run := len(v.runs) - 1
	v.heads[off], v.runOf[off], v.runs[run].To, v.last = head, run, off, off
	if env, err := events.Decode(raw); err == nil {
		if p, ok := env.Payload.(events.LogCheckpointedV); ok {
			v.checkpoints = append(v.checkpoints, checkpointAt{off, p})
		}
	}
	return nil
}

// LinkReport is what an export's links prove.
type LinkReport struct {
	Lines     int // lines read
	Unchecked int // lines without their record's bytes
	// Checkpoints matched a run; Outside covered no exported record.
	Checkpoints, Outside int
	Runs                 []LinkRun
}

// Finish checks the checkpoints against the runs.
func (v *LinkVerifier) Finish() (LinkReport, error) {
	rep := LinkReport{Lines: v.lines, Unchecked: v.unchecked}
	for _, c := range v.checkpoints {
		head, ok := v.heads[c.p.Covers]
		if !ok {
			rep.Outside++
			continue
		}
		if hex.EncodeToString(head) != c.p.Head {
			return rep, fmt.Errorf("the checkpoint at offset %d (key %s) does not match the exported records up to offset %d: one of them was changed",
				c.offset, c.p.KeyID, c.p.Covers)
		}
		if v.key != nil && !SignedBy(v.key, c.p) {
			return rep, fmt.Errorf("the checkpoint at offset %d is not signed by the given key", c.offset)
		}
		r := &v.runs[v.runOf[c.p.Covers]]
		r.Signed = max(r.Signed, c.p.Covers)
		rep.Checkpoints++
	}
	rep.Runs = v.runs
	return rep, nil
}
