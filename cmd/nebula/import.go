//go:build !agent

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// runImport restores a backup written by `nebula events export` into an
// event topic: every record, byte for byte, at the offset it had, so that
// versions (offsets) do not change and devices see no difference. It
// resumes an interrupted import (the records already there must match
// the backup) and refuses a topic that holds anything else.
func runImport(ctx context.Context, args []string, stdout io.Writer) error {
	var k kafkaFlags
	var file string
	f := newFlags("events import", "Restores a backup (`nebula events export`) into an event topic at the same offsets:\n"+
		"into an empty topic (a new cluster, or a lost log), or to finish an interrupted import. Stop the managers first.", args)
	addLocalKafkaFlags(f, &k)
	f.String(&file, "file", "-", "the backup, a JSONL file of `nebula events export` (- : stdin)")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	in := io.Reader(os.Stdin)
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return usageError{err}
		}
		defer fh.Close()
		in = fh
	}
	l, end, err := openLog(ctx, k)
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(stdout, "nebula events import: topic %s holds offsets 0-%d; restoring from offset %d\n", l.Topic(), end-1, end)

	// The records already in the topic must be the backup's first ones.
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	line := 0
	next := func() (events.Record, bool, error) {
		if !sc.Scan() {
			return events.Record{}, false, sc.Err()
		}
		line++
		var e exportLine
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Raw == nil {
			return events.Record{}, false, fmt.Errorf("backup line %d is not a line of `nebula events export` (%v)", line, err)
		}
		env, err := events.Decode(e.Raw)
		if err != nil {
			return events.Record{}, false, fmt.Errorf("backup line %d (offset %d): %w", line, e.Offset, err)
		}
		var sig []byte
		if e.Signature != "" {
			sig = []byte(e.Signature)
		}
		return events.Record{Offset: e.Offset, Value: e.Raw, CommandID: env.CommandID, Signature: sig, Timestamp: e.Timestamp}, true, nil
	}
	var pending []events.Record
	if end > 0 {
		var mismatch error
		var checked int64
		rec, ok, err := next()
		if err != nil {
			return err
		}
		err = l.Scan(ctx, 0, func(have events.Record) bool {
			switch {
			case !ok:
				mismatch = fmt.Errorf("the topic holds more records (%d) than the backup (%d): not this backup's log", end, checked)
			case rec.Offset != have.Offset || !bytes.Equal(rec.Value, have.Value):
				mismatch = fmt.Errorf("offset %d of the topic differs from the backup's: the topic holds another log; import into an empty topic", have.Offset)
			}
			if mismatch != nil {
				return false
			}
			checked++
			if have.Offset == end-1 {
				return false
			}
			rec, ok, err = next()
			if err != nil {
				mismatch = err
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		if mismatch != nil {
			return mismatch
		}
		fmt.Fprintf(stdout, "nebula events import: the %d records already there match the backup\n", checked)
	}
	p := &progress{w: os.Stderr, what: "import", total: -1, last: time.Now()}
	written := int64(0)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		offs, err := l.AppendRecords(ctx, pending)
		if err != nil {
			return fmt.Errorf("import stopped at offset %d (run it again to resume): %w", pending[0].Offset, err)
		}
		for i, o := range offs {
			if o != pending[i].Offset {
				return fmt.Errorf("record of offset %d was written at %d: someone else writes to this topic (stop the managers) or a write was retried; the topic no longer matches the backup", pending[i].Offset, o)
			}
		}
		written += int64(len(pending))
		p.at(written)
		pending = pending[:0]
		return nil
	}
	want := end
	for {
		rec, ok, err := next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if rec.Offset < want {
			continue // resumed import: already there and checked
		}
		if rec.Offset != want {
			return fmt.Errorf("backup line %d has offset %d, want %d: the backup has a gap (export the whole log)", line, rec.Offset, want)
		}
		pending = append(pending, rec)
		want++
		if len(pending) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "nebula events import: %d records written; the topic now ends at offset %d (versions unchanged)\n", written, want-1)
	return nil
}
