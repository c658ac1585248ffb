//go:build !agent

package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/chain"
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
	v := chain.NewVerifier(key)
	if export != "" {
		fh, err := os.Open(export)
		if err != nil {
			return err
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 4*events.MaxRecordSize)
		var links *chain.LinkVerifier // an audit export: each line with its link
		for n := 1; sc.Scan(); n++ {
			var l exportLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return fmt.Errorf("export line %d is not an export record: %w", n, err)
			}
			if n == 1 && l.ChainPrev != nil {
				links = chain.NewLinkVerifier(key)
			}
			if links != nil {
				if l.ChainPrev == nil {
					return fmt.Errorf("export line %d has no chain_prev: not an audit export line", n)
				}
				if err := links.Line(l.Offset, l.Raw, *l.ChainPrev, l.Chain); err != nil {
					fmt.Fprintln(stdout, "TAMPERED:", err)
					return errTampered
				}
				continue
			}
			err := v.Record(l.Offset, l.Raw)
			if err == nil && l.Chain != "" && l.Chain != hex.EncodeToString(v.Head()) {
				err = fmt.Errorf("the chain link exported with offset %d is not the chain of the records up to it: the export was changed", l.Offset)
			}
			if err != nil {
				fmt.Fprintln(stdout, "TAMPERED:", err)
				return errTampered
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if links != nil {
			return reportLinks(links, stdout)
		}
	} else {
		l, _, err := openLog(ctx, k)
		if err != nil {
			return err
		}
		defer l.Close()
		var tampered error
		err = l.Scan(ctx, 0, func(rec events.Record) bool {
			tampered = v.Record(rec.Offset, rec.Value)
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
	fmt.Fprintf(stdout, "verified %d records and %d checkpoints", v.Records(), v.Checkpoints())
	if v.Covered() >= 0 {
		fmt.Fprintf(stdout, "; the log up to offset %d is as signed", v.Covered())
	}
	if v.Records()-1 > v.Covered() {
		fmt.Fprintf(stdout, "; offsets %d to %d are not covered by a checkpoint yet", v.Covered()+1, v.Records()-1)
	}
	fmt.Fprintln(stdout)
	return nil
}

// reportLinks finishes checking an audit export and says what it proves.
func reportLinks(links *chain.LinkVerifier, stdout io.Writer) error {
	rep, err := links.Finish()
	if err != nil {
		fmt.Fprintln(stdout, "TAMPERED:", err)
		return errTampered
	}
	fmt.Fprintf(stdout, "verified the chain links of %d records", rep.Lines-rep.Unchecked)
	if rep.Unchecked > 0 {
		fmt.Fprintf(stdout, " (%d exported without their bytes, users' records, not checked)", rep.Unchecked)
	}
	fmt.Fprintf(stdout, "; %d checkpoints matched", rep.Checkpoints)
	for _, r := range rep.Runs {
		if r.Signed >= 0 {
			fmt.Fprintf(stdout, "; offsets %d to %d are as signed", r.From, r.Signed)
		}
	}
	if rep.Outside > 0 {
		fmt.Fprintf(stdout, "; %d checkpoints cover no exported record (export the offsets up to the one they cover to prove those)", rep.Outside)
	}
	fmt.Fprintln(stdout)
	return nil
}
