package chain_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events/chain"
)

// TestLinkVerifier: an export of a part of the log (with each record's
// chain before and after) is proven up to a signed checkpoint it holds;
// a changed record, a changed link, or a run started from a forged chain
// is found; records without their bytes are counted, not checked.
func TestLinkVerifier(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	recs := log(t, 8, priv) // 0-7 app creates, 8 the checkpoint covering 7
	heads := make([]string, len(recs))
	var head []byte
	for off, b := range recs {
		head = chain.NewHasher().Next(head, int64(off), b)
		heads[off] = hex.EncodeToString(head)
	}
	type line struct {
		off        int64
		raw        []byte
		prev, head string
	}
	export := func(from int) []line {
		var out []line
		for off := from; off < len(recs); off++ {
			l := line{off: int64(off), raw: recs[off], head: heads[off]}
			if off > 0 {
				l.prev = heads[off-1]
			}
			out = append(out, l)
		}
		return out
	}
	check := func(lines []line, key ed25519.PublicKey) (chain.LinkReport, error) {
		v := chain.NewLinkVerifier(key)
		for _, l := range lines {
			if err := v.Line(l.off, l.raw, l.prev, l.head); err != nil {
				return chain.LinkReport{}, err
			}
		}
		return v.Finish()
	}

	// From offset 3: one run, 3 to 8, signed up to 7.
	rep, err := check(export(3), pub)
	if err != nil || rep.Checkpoints != 1 || len(rep.Runs) != 1 || rep.Runs[0] != (chain.LinkRun{From: 3, To: 8, Signed: 7}) {
		t.Fatalf("a part of the log: %+v %v", rep, err)
	}
	// A record without its bytes breaks the run: the checkpoint proves
	// the run after it.
	lines := export(3)
	lines[1].raw = nil
	if rep, err := check(lines, pub); err != nil || rep.Unchecked != 1 || len(rep.Runs) != 2 || rep.Runs[1].Signed != 7 || rep.Runs[0].Signed != -1 {
		t.Fatalf("a record without its bytes: %+v %v", rep, err)
	}
	// Only some records (a filter), and the checkpoint: each link checks,
	// nothing but the checkpoint's own run is signed.
	some := []line{export(0)[1], export(0)[4], export(0)[8]}
	if rep, err := check(some, pub); err != nil || len(rep.Runs) != 3 || rep.Outside != 1 || rep.Checkpoints != 0 {
		t.Fatalf("a filtered export: %+v %v", rep, err)
	}

	for name, change := range map[string]func([]line){
		"a record changed":       func(ls []line) { ls[2].raw = []byte(strings.Replace(string(ls[2].raw), "nginx", "evil!", 1)) },
		"a link changed":         func(ls []line) { ls[2].head = heads[0] },
		"a chain before changed": func(ls []line) { ls[2].prev = heads[0] },
		"a run from a forged chain": func(ls []line) {
			// Records 3-8 rehashed from a made-up chain: each link
			// holds, but the run does not reach the signed head.
			prev := strings.Repeat("ab", 32)
			for i := range ls {
				p, _ := hex.DecodeString(prev)
				ls[i].prev, ls[i].head = prev, hex.EncodeToString(chain.NewHasher().Next(p, ls[i].off, ls[i].raw))
				prev = ls[i].head
			}
		},
	} {
		lines := export(3)
		change(lines)
		if _, err := check(lines, pub); err == nil {
			t.Errorf("%s: not found", name)
		}
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := check(export(3), other); err == nil {
		t.Error("a checkpoint signed by another key passed")
	}
}
