//go:build !agent

package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/chain"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// exportLine is one record of `nebula events export --format jsonl`: the
// decoded event, the record's exact bytes, and the hash chain's head after
// it (events/chain), so that an export can be checked offline against a
// signed checkpoint.
type exportLine struct {
	Offset    int64           `json:"offset"`
	Timestamp time.Time       `json:"timestamp"`
	Event     json.RawMessage `json:"event"`
	Raw       []byte          `json:"raw"`
	Chain     string          `json:"chain,omitempty"`
	// ChainPrev, in the API's audit export (GET /api/v2/events?format=jsonl),
	// is the chain before the record: its lines may skip records.
	ChainPrev *string `json:"chain_prev,omitempty"`
	// Signature is the record's signature header (events/signing), kept
	// so that a restore keeps the proof that a manager wrote it.
	Signature string `json:"signature,omitempty"`
}

// progress prints a progress line every few seconds on long runs.
type progress struct {
	w     io.Writer
	what  string
	total int64
	last  time.Time
}

func (p *progress) at(done int64) {
	if time.Since(p.last) < 2*time.Second {
		return
	}
	p.last = time.Now()
	if p.total <= 0 {
		fmt.Fprintf(p.w, "%s: %d records\n", p.what, done)
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d records (%d%%)\n", p.what, done, p.total, 100*done/max(p.total, 1))
}

func runEvents(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) > 0 && args[0] == "verify" {
		return runVerify(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "import" {
		return runImport(ctx, args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "export" {
		// The history API through the manager: nebula events [--kind ...]
		return cliRun(ctx, append([]string{"events"}, args...), stdout)
	}
	args = args[1:]
	var k kafkaFlags
	var from, to int
	var format string
	f := newFlags("events export", "Writes the event log, decoded, one JSON line per record, to stdout; progress on stderr.", args)
	addLocalKafkaFlags(f, &k)
	f.Int(&from, "from", 0, "first offset")
	f.Int(&to, "to", -1, "last offset (-1: the end)")
	f.String(&format, "format", "jsonl", "jsonl (the only format)")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	if format != "jsonl" {
		return usageError{fmt.Errorf("format %q: only jsonl", format)}
	}
	l, end, err := openLog(ctx, k)
	if err != nil {
		return err
	}
	defer l.Close()
	if to < 0 || int64(to) >= end {
		to = int(end) - 1
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	p := &progress{w: os.Stderr, what: "export", total: int64(to - from + 1), last: time.Now()}
	var failed error
	// The chain is extended from offset 0, whatever --from says: each line
	// carries the head after its record.
	hasher := chain.NewHasher()
	var head []byte
	err = l.Scan(ctx, 0, func(rec events.Record) bool {
		if rec.Offset > int64(to) {
			return false
		}
		head = hasher.Next(head, rec.Offset, rec.Value)
		if rec.Offset < int64(from) {
			return true
		}
		env, err := events.Decode(rec.Value)
		if err != nil {
			failed = fmt.Errorf("record at offset %d: %w", rec.Offset, err)
			return false
		}
		ev, _ := json.Marshal(eventJSON(env))
		line, _ := json.Marshal(exportLine{Offset: rec.Offset, Timestamp: rec.Timestamp, Event: ev, Raw: rec.Value, Chain: hex.EncodeToString(head),
			Signature: string(rec.Signature)})
		out.Write(append(line, '\n'))
		p.at(rec.Offset + 1 - int64(from))
		return true
	})
	if err != nil {
		return err
	}
	return failed
}

// eventJSON is the decoded envelope as JSON (secrets are hashes already).
func eventJSON(env events.Envelope) map[string]any {
	return map[string]any{"type": env.Type, "schema": env.Schema, "aggregate": env.Aggregate, "actor": env.Actor,
		"command_id": env.CommandID, "time": env.Time, "if_version": env.IfVersion, "payload": env.Payload}
}

// runReplay rebuilds a projection as of an offset or a time, in a
// directory of its own (forensics: point a manager at a copy of the past).
func runReplay(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var k kafkaFlags
	var to, dir string
	f := newFlags("replay", "Rebuilds the projection as of --to (an offset or an RFC 3339 time) into --data-dir/projection.", args)
	addLocalKafkaFlags(f, &k)
	f.String(&to, "to", "", "offset or RFC 3339 time (required)")
	f.String(&dir, "data-dir", "", "directory of the rebuilt projection (required; not a running manager's)")
	var keyFile, trusted string
	var unsigned bool
	f.String(&keyFile, "record-key", "", "the managers' record key file: records it did not sign are rejected, as the managers reject them", "NEBULA_RECORD_KEY")
	f.String(&trusted, "record-trusted-keys", "", "or the managers' trusted public keys (hex, comma-separated; `nebula record-key public FILE`)", "NEBULA_RECORD_TRUSTED_KEYS")
	f.Bool(&unsigned, "unsigned-records", false, "fold a signed log without checking signatures (forged records count)")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	if to == "" || dir == "" {
		return usageError{fmt.Errorf("--to and --data-dir are required")}
	}
	trust, err := replayTrust(keyFile, trusted)
	if err != nil {
		return usageError{err}
	}
	l, end, err := openLog(ctx, k)
	if err != nil {
		return err
	}
	defer l.Close()
	last := end - 1
	var at time.Time
	if n, err := strconv.ParseInt(to, 10, 64); err == nil {
		last = min(n, end-1)
	} else if at, err = time.Parse(time.RFC3339, to); err != nil {
		return usageError{fmt.Errorf("--to %q is neither an offset nor an RFC 3339 time", to)}
	}
	store, err := projections.Open(dir+"/projection", logger)
	if err != nil {
		return err
	}
	defer store.Close()
	id, err := l.Identity(ctx)
	if err != nil {
		return err
	}
	store.SetTrust(trust)
	if err := store.Reset(id); err != nil {
		return err
	}
	p := &progress{w: stdout, what: "replay", total: last + 1, last: time.Now()}
	var batch []events.Record
	var failed error
	flush := func() bool {
		if _, err := store.ApplyBatch(batch); err != nil {
			failed = err
			return false
		}
		batch = batch[:0]
		p.at(store.Applied() + 1)
		return true
	}
	err = l.Scan(ctx, 0, func(rec events.Record) bool {
		if rec.Offset > last {
			return false
		}
		if trust == nil && !unsigned && len(rec.Signature) > 0 {
			failed = usageError{fmt.Errorf("the record at offset %d is signed: give the managers' --record-key or --record-trusted-keys, "+
				"so that the replay rejects what they reject (or --unsigned-records to count every record)", rec.Offset)}
			return false
		}
		if !at.IsZero() {
			env, err := events.Decode(rec.Value)
			if err != nil {
				failed = fmt.Errorf("record at offset %d: %w", rec.Offset, err)
				return false
			}
			if env.Time.After(at) {
				return false
			}
		}
		batch = append(batch, rec)
		return len(batch) < 1000 || flush()
	})
	if err == nil && failed == nil {
		flush()
	}
	if err = cmp.Or(err, failed); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "nebula replay: projection as of offset %d in %s/projection\n", store.Applied(), dir)
	return nil
}

// replayTrust is the trust the flags give (nil: none).
func replayTrust(keyFile, trusted string) (*signing.Trust, error) {
	keys, err := signing.ParsePublicKeys(trusted)
	if err != nil {
		return nil, err
	}
	if keyFile != "" {
		key, err := signing.LoadKey(keyFile)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key.Public().(ed25519.PublicKey))
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return signing.NewTrust(keys...), nil
}

// addLocalKafkaFlags are the Kafka flags of the offline tools (export,
// replay, verify): by default they read the broker `nebula dev` runs.
func addLocalKafkaFlags(f *flags, k *kafkaFlags) {
	addKafkaFlags(f, k)
	if k.brokers == "" {
		k.brokers = "127.0.0.1:9092"
	}
}

// openLog opens the event log the flags name and returns its end.
func openLog(ctx context.Context, k kafkaFlags) (*kafkalog.Log, int64, error) {
	cfg, err := k.config()
	if err != nil {
		return nil, 0, usageError{err}
	}
	l, err := kafkalog.Open(ctx, cfg)
	if err != nil {
		return nil, 0, err
	}
	_, end, err := l.Bounds(ctx)
	if err != nil {
		l.Close()
		return nil, 0, err
	}
	return l, end, nil
}
