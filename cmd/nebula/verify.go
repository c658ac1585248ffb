package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// errTampered: verify found the log not as signed (exit code 1).
var errTampered = errors.New("the event log does not match its signed checkpoints")

// runVerify recomputes the log's hash chain (from Kafka, or from an
// export) and checks every checkpoint: its head, and its signature when a
// public key is given.
func runVerify(ctx context.Context, args []string, stdout io.Writer) error {
	var k kafkaFlags
	var export, pub string
	f := newFlags("events verify", "Recomputes the event log's hash chain and checks every signed checkpoint; exit 1 on a mismatch.", args)
	addLocalKafkaFlags(f, &k)
	f.String(&export, "export", "", "read this export (nebula events export) instead of Kafka")
	f.String(&pub, "public-key", "", "ed25519 public key (hex) the checkpoints must be signed with")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	var key ed25519.PublicKey
	if pub != "" {
		b, err := hex.DecodeString(pub)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return usageError{fmt.Errorf("--public-key: want %d bytes in hex", ed25519.PublicKeySize)}
		}
		key = b
	}
	v := &verifier{key: key, heads: map[int64]string{}, lastGood: -1}
	if export != "" {
		fh, err := os.Open(export)
		if err != nil {
			return err
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 4*events.MaxRecordSize)
		for sc.Scan() {
			var l exportLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return fmt.Errorf("export line after offset %d is not an export record: %w", v.next-1, err)
			}
			if err := v.record(l.Offset, l.Raw); err != nil {
				fmt.Fprintln(stdout, "TAMPERED:", err)
				return errTampered
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
	} else {
		l, _, err := openLog(ctx, k)
		if err != nil {
			return err
		}
		defer l.Close()
		var tampered error
		err = l.Scan(ctx, 0, func(rec events.Record) bool {
			tampered = v.record(rec.Offset, rec.Value)
			return tampered == nil
		})
		if err != nil {
			return err
		}
		if tampered != nil {
			fmt.Fprintln(stdout, "TAMPERED:", tampered)
			return errTampered
		}
	}
	fmt.Fprintf(stdout, "verified %d records and %d checkpoints", v.next, v.checkpoints)
	if v.lastGood >= 0 {
		fmt.Fprintf(stdout, "; the log up to offset %d is as signed", v.lastGood)
	}
	if v.next-1 > v.lastGood {
		fmt.Fprintf(stdout, "; offsets %d to %d are not covered by a checkpoint yet", v.lastGood+1, v.next-1)
	}
	fmt.Fprintln(stdout)
	return nil
}

type verifier struct {
	key         ed25519.PublicKey
	prev        []byte
	next        int64 // the offset expected next
	heads       map[int64]string
	lastGood    int64 // covers of the last checkpoint that matched
	checkpoints int
}

func (v *verifier) record(off int64, raw []byte) error {
	if off != v.next {
		return fmt.Errorf("offset %d follows offset %d: records are missing", off, v.next-1)
	}
	h := sha256.New()
	h.Write(v.prev)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(off)))
	h.Write(raw)
	v.prev = h.Sum(nil)
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
	if v.key != nil {
		sig, err := hex.DecodeString(p.Signature)
		if err != nil || !ed25519.Verify(v.key, events.CheckpointMessage(p.Covers, p.Head), sig) {
			return fmt.Errorf("the checkpoint at offset %d is not signed by the given key", off)
		}
	}
	v.lastGood = p.Covers
	v.checkpoints++
	return nil
}
