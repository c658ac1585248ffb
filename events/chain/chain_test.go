package chain_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/chain"
)

// log is n app creates followed by a checkpoint of them signed with key.
func log(t *testing.T, n int, key ed25519.PrivateKey) [][]byte {
	t.Helper()
	var recs [][]byte
	var head []byte
	h := chain.NewHasher()
	add := func(p events.Payload, kind events.Kind, name string) {
		b, err := events.Encode(events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: kind, Name: name},
			Actor: "t", Time: time.Unix(1, 0).UTC(), Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		head = h.Next(head, int64(len(recs)), b)
		recs = append(recs, b)
	}
	for i := range n {
		add(events.AppCreatedV{Spec: events.NewAppSpec("nginx")}, events.KindApp, "app"+string(rune('a'+i)))
	}
	add(chain.Sign(key, "k1", int64(n-1), head), events.KindLog, "")
	return recs
}

func verify(v *chain.Verifier, recs [][]byte) error {
	for off, b := range recs {
		if err := v.Record(int64(off), b); err != nil {
			return err
		}
	}
	return nil
}

func TestVerifier(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	recs := log(t, 5, key)

	v := chain.NewVerifier(pub)
	if err := verify(v, recs); err != nil {
		t.Fatalf("the log as written: %v", err)
	}
	if v.Records() != 6 || v.Checkpoints() != 1 || v.Covered() != 4 {
		t.Fatalf("records %d, checkpoints %d, covered %d", v.Records(), v.Checkpoints(), v.Covered())
	}

	changed := append([][]byte(nil), recs...)
	changed[2] = []byte(strings.Replace(string(recs[2]), "nginx", "evil!", 1))
	if err := verify(chain.NewVerifier(nil), changed); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a changed record: %v", err)
	}
	if err := verify(chain.NewVerifier(otherPub), recs); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("another key: %v", err)
	}
	gap := append(append([][]byte(nil), recs[:2]...), recs[3:]...)
	v = chain.NewVerifier(nil)
	err := v.Record(0, gap[0])
	if err == nil {
		err = v.Record(1, gap[1])
	}
	if err == nil {
		err = v.Record(3, gap[2])
	}
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing record: %v", err)
	}
}

// TestAppendNextIsNext: heads appended one after the other to one buffer
// are the heads Next computes, the definition's SHA-256, and appending
// one leaves the ones before it as they were.
func TestAppendNextIsNext(t *testing.T) {
	h := chain.NewHasher()
	var buf, prev, want []byte
	var heads [][]byte
	for off := range int64(20) {
		value := []byte(strings.Repeat("x", int(off)))
		buf = h.AppendNext(buf, prev, off, value)
		prev = buf[len(buf)-sha256.Size:]
		heads = append(heads, prev)
		sum := sha256.Sum256(append(binary.BigEndian.AppendUint64(append([]byte(nil), want...), uint64(off)), value...))
		want = sum[:]
		if !bytes.Equal(prev, want) {
			t.Fatalf("head %d: %x, want %x", off, prev, want)
		}
	}
	prev = nil
	for off, head := range heads {
		next := chain.NewHasher().Next(prev, int64(off), []byte(strings.Repeat("x", off)))
		if !bytes.Equal(head, next) {
			t.Fatalf("head %d in the buffer changed: %x, Next says %x", off, head, next)
		}
		prev = next
	}
}
