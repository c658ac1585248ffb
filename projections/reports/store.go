package reports

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/badgerdir"
)

// Reports key layout (a Badger directory of its own):
//
//	o/<partition int32 BE>        int64 BE: next offset of the device events topic partition
//	r/<id>                        JSON StoredReport (TTL)
//	g/<device group>\x00<id>      empty: index of reports by group (TTL)
//	h/<hostname>\x00<id>          empty: index of reports by hostname (TTL)
//	meta/hostname_index           present once h/ indexes every r/ entry (a store from before h/ is indexed at open)
//	e/<event id>                  empty: the device event was folded (TTL; redeliveries are skipped)
//	d/<device id>                 JSON Device: the device's last report in short (expires 24 x TTL after its
//	                              minute, held a little longer: seen.go)
//	m/<device group>\x00<device id> empty: index of devices by group (expires with d/<device id>)
//	k/<device id>                 the device's last seen and standing in short: what a heartbeat moves (seen.go)
//	meta/device_index             present once m/ indexes every d/ entry (a store from before m/ is indexed at open)
//	v/<device id>\x00<id>         JSON AppliedVersion: a report whose applied version or group differs from the
//	                              device's report before it (no TTL: a device's story is kept as long as its events)
//	c/, l/, s/                    a group's devices' standing: counters and indexes (standing.go)
//	meta/standing_index           present once c/, l/ and s/ hold every d/ entry (a store from before is indexed at open)
//
// id is 24 hex digits, like a MongoDB ObjectId and in the same order:
// the acceptance time in seconds, then partition and offset.
var (
	prefixOffset      = []byte("o/")
	prefixReport      = []byte("r/")
	prefixGroupReport = []byte("g/")
	prefixHostReport  = []byte("h/")
	keyHostnameIndex  = []byte("meta/hostname_index")
	prefixEvent       = []byte("e/")
	prefixDevice      = []byte("d/")
	prefixGroupDevice = []byte("m/")
	keyDeviceIndex    = []byte("meta/device_index")
	prefixApplied     = []byte("v/")
	prefixStandCount  = []byte("c/")
	prefixLastSeen    = []byte("l/")
	prefixStandDevice = []byte("s/")
	keyStandingIndex  = []byte("meta/standing_index")
)

// StoredReport is a report as the reports API serves it.
type StoredReport struct {
	ID         string        `json:"id"`
	InsertedAt time.Time     `json:"inserted_at"`
	Report     events.Report `json:"report"`
}

// Device is what the inventory knows of a device.
type Device struct {
	DeviceID       string             `json:"device_id"`
	DeviceGroup    string             `json:"device_group"`
	Hostname       string             `json:"hostname"`
	Labels         map[string]string  `json:"labels,omitempty"`
	LastSeen       time.Time          `json:"last_seen"`
	AppliedVersion int64              `json:"applied_version"`
	Apps           []events.AppStatus `json:"apps_status"`
	Errors         []string           `json:"errors"`
	// From the reporter's status events.
	Silent          bool      `json:"silent"`
	ConvergedAt     int64     `json:"converged_version"` // last version converged, -1 none
	StatusChangedAt time.Time `json:"status_changed_at"`
	Failure         string    `json:"failure,omitempty"`
}

// Store keeps device reports for the reports API, for TTL (as
// Nebula 2.7's mongo_report_ttl), with the topic offsets in the same
// transactions: exactly once per record, whatever restarts.
type Store struct {
	db *badger.DB
	// watch finds tables changed on disk while the store is open (nil in
	// memory): reads then answer ErrDamaged, and Follow rebuilds the store
	// from the device events topic.
	watch  *badgerdir.Watch
	ttl    time.Duration
	logger *slog.Logger
	folded atomic.Int64
	// behind is how many device events the topic held, when following
	// began, that are not folded yet; -1 until following begins, 0 once
	// caught up (it stays 0).
	behind atomic.Int64
	// lag is how many device events the topic holds that are not folded,
	// as of the last check (every LagEvery while following); -1 unknown.
	lag atomic.Int64
	// LagEvery is how often the lag is checked (set before following).
	LagEvery time.Duration
	// beforeCommit, if set (tests), runs before each batch's commit; an
	// error fails the commit.
	beforeCommit func() error
	// afterFold, if set (tests), runs after each batch is folded.
	afterFold func()
}

// Open opens the report store in dir ("" = memory).
func Open(dir string, ttl time.Duration, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Memory is bounded by the memtables (Badger's defaults take up to
	// 5x64 MiB, and twice a memtable's size to flush one), not by the
	// devices; sized as the projection store is (projections.openAt, and
	// docs/projections.md, "Memory"): two memtables, no compression, no
	// block cache. The memtables are 4 MiB, not 16: Badger keeps up to 8
	// table builders' buffers for reuse, and a flush of a larger memtable
	// grows its buffer past the 4 MiB a builder starts with, so under a
	// flood of reports they held 60-70 MB (peak anonymous memory 270-290
	// MB with 8 or 16 MiB memtables, 180-210 MB with 4).
	opts := badger.DefaultOptions(dir).WithLogger(badgerdir.Logger(logger)).WithNumVersionsToKeep(1).
		WithValueLogFileSize(64 << 20).WithNumCompactors(2).
		WithMemTableSize(4 << 20).WithNumMemtables(2).WithCompression(options.None).WithBlockCacheSize(0)
	opts.TableSizeMultiplier = 1 // as the projection store's
	// The one transaction that writes is a batch's commit (batch.go),
	// which reads nothing, and batches commit one at a time: Badger could
	// never find a conflict, and hashed every key of every commit.
	opts = opts.WithDetectConflicts(false)
	if dir == "" {
		// In memory, values are refused over the threshold (no value
		// log): the default, 1 MiB, which needs a batch limit (15% of a
		// memtable) at least as large. Tests and `nebula dev` without a
		// data directory; the memory budget is the on-disk store's.
		opts = opts.WithInMemory(true).WithMemTableSize(16 << 20)
	} else {
		// A report (kilobytes) goes to the value log, its keys stay in
		// the tree: compactions then move keys, not reports, and what they
		// cost in memory and time no longer grows with the reports kept.
		// Expired reports leave garbage in the value log, reclaimed by
		// Follow.
		opts = opts.WithValueThreshold(valueThreshold)
	}
	db, err := badgerdir.Open(opts, "the report store", logger)
	if err != nil {
		return nil, fmt.Errorf("open report store %s: %w", dir, err)
	}
	s := &Store{db: db, ttl: ttl, logger: logger}
	if dir != "" {
		s.watch = badgerdir.NewWatch(db, opts)
	}
	s.behind.Store(-1)
	s.lag.Store(-1)
	s.LagEvery = 10 * time.Second
	if err := errors.Join(s.indexDevices(), s.indexHostnames(), s.indexStanding()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open report store %s: %w", dir, err)
	}
	return s, nil
}

// valueThreshold: values this long and longer go to the value log.
const valueThreshold = 256

// Close closes the store.
func (s *Store) Close() error {
	if s.watch != nil {
		s.watch.Close()
	}
	return s.db.Close()
}

// ErrDamaged: a table of the store was changed on disk and its blocks do
// not match their checksums; Follow rebuilds the store from the device
// events topic.
var ErrDamaged = errors.New("the report store's files are damaged")

// damage says whether the store's files were found damaged.
func (s *Store) damage() error {
	if s.watch == nil {
		return nil
	}
	if err := s.watch.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return nil
}

// view is db.View for the reads whose answers are served: one that finds
// the store damaged (Badger reads a damaged block as a missing key, with
// no error) returns ErrDamaged instead of what it read.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	err := s.db.View(fn)
	if derr := s.damage(); derr != nil {
		return derr
	}
	return err
}

// VerifyEvery is how often Follow reads every table of the store from
// its files, for damage the file system does not see.
const VerifyEvery = 10 * time.Minute

// cancelOnDamage calls cancel when the store is found damaged (checked
// every second, and every VerifyEvery from the files), so that an idle
// Follow rebuilds it at once.
func (s *Store) cancelOnDamage(ctx context.Context, cancel func()) {
	if s.watch == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	verified := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Sub(verified) >= VerifyEvery {
				verified = now
				_ = s.watch.VerifyAll() // found, it is what damage returns
			}
			if s.damage() != nil {
				cancel()
				return
			}
		}
	}
}

// rebuild empties a damaged store, to fold the device events topic again
// from its start.
func (s *Store) rebuild(cause error) error {
	s.logger.Error("the report store is damaged; rebuilding it from the device events topic", "err", cause)
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("empty the damaged report store: %w", err)
	}
	s.watch.Forget()
	return errors.Join(s.indexDevices(), s.indexHostnames(), s.indexStanding())
}

// Folded counts the reports this process stored.
func (s *Store) Folded() int64 { return s.folded.Load() }

// Offsets returns the next offset of each partition folded so far.
func (s *Store) Offsets() (map[int32]int64, error) {
	out := map[int32]int64{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixOffset, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[int32(binary.BigEndian.Uint32(k[len(prefixOffset):]))] = decodeInt(v)
		}
		return nil
	})
	return out, err
}

func partitionKey(p int32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), prefixOffset...), uint32(p))
}

// reportsPerTxn bounds a batch (Badger refuses too big transactions).
const reportsPerTxn = 500

// Apply folds records (in order per partition); records at offsets
// already folded, and events already seen, are skipped. An undecodable
// record is logged and skipped: this topic is a feed, not the source of
// truth. It returns once they are committed.
func (s *Store) Apply(recs []events.Record) error {
	p := &pipeline{s: s}
	// Decoded a transaction's worth at a time: a fetch decoded whole
	// held every report of it in memory at once.
	for len(recs) > 0 {
		n := min(len(recs), reportsPerTxn)
		if err := p.apply(recs[:n], decodeDeviceEvents(recs[:n])); err != nil {
			return errors.Join(err, p.close())
		}
		recs = recs[n:]
	}
	return p.close()
}

// apply folds recs in one batch and starts committing it, or, when that is
// more than a transaction holds (Badger's limit is a share of a memtable:
// long device IDs and hostnames in 500 reports' keys reach it), in halves.
func (p *pipeline) apply(recs []events.Record, decoded []deviceEvent) error {
	b := p.s.newBatch(p.top())
	if err := p.s.fold(b, recs, decoded); err != nil {
		return err
	}
	if p.s.afterFold != nil {
		p.s.afterFold()
	}
	if b.fits(p.s.db) {
		if len(b.writes) == 0 {
			return nil // every record folded before
		}
		return p.commit(b)
	}
	if len(recs) < 2 {
		return fmt.Errorf("the device event at partition %d offset %d does not fit in one transaction: %w",
			recs[0].Partition, recs[0].Offset, badger.ErrTxnTooBig)
	}
	h := len(recs) / 2
	if err := p.apply(recs[:h], decoded[:h]); err != nil {
		return err
	}
	return p.apply(recs[h:], decoded[h:])
}

// deviceEvent is a record of the device events topic, decoded.
type deviceEvent struct {
	ev events.DeviceEvent
	// report is the report's JSON: as the record holds it when
	// events.ReadDeviceEvent read it, encoded again otherwise.
	report json.RawMessage
	err    error
}

// decodeDeviceEvents decodes records on every core: decoding is most of
// what folding a report costs, and depends on nothing stored.
func decodeDeviceEvents(recs []events.Record) []deviceEvent {
	out := make([]deviceEvent, len(recs))
	workers := min(runtime.GOMAXPROCS(0), len(recs)/64+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				out[i] = decodeDeviceEvent(recs[i].Value)
			}
		})
	}
	wg.Wait()
	return out
}

func decodeDeviceEvent(b []byte) deviceEvent {
	d := deviceEvent{}
	var ok bool
	if d.ev, d.report, ok = events.ReadDeviceEvent(b); !ok {
		d = deviceEvent{}
		if err := json.Unmarshal(b, &d.ev); err != nil {
			return deviceEvent{err: err}
		}
		if d.ev.Report != nil {
			raw, err := json.Marshal(d.ev.Report)
			if err != nil {
				return deviceEvent{err: err}
			}
			d.report = raw
		}
	}
	if d.ev.ID == "" || d.ev.DeviceID == "" {
		return deviceEvent{err: errors.New("no event or device ID")}
	}
	return d
}

// storedReportJSON is StoredReport's JSON, with the report as the record
// held it (re-encoding it was a third of folding a report).
func storedReportJSON(id string, at time.Time, report json.RawMessage) ([]byte, error) {
	t, err := at.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(report)+len(t)+64)
	b = append(append(append(b, `{"id":"`...), id...), `","inserted_at":`...)
	b = append(append(append(b, t...), `,"report":`...), report...)
	return append(b, '}'), nil
}

// fold folds recs into b.
func (s *Store) fold(b *batch, recs []events.Record, decoded []deviceEvent) error {
	sd := newStandingDelta()
	offsets := map[int32]int64{}
	for i, rec := range recs {
		from, ok := offsets[rec.Partition]
		if !ok {
			v, _, found, err := b.get(partitionKey(rec.Partition))
			if err != nil {
				return err
			}
			if found {
				from = decodeInt(v)
			}
			offsets[rec.Partition] = from
		}
		if rec.Offset < from {
			continue
		}
		b.next[rec.Partition] = rec.Offset + 1
		ev, err := decoded[i].ev, decoded[i].err
		if err != nil {
			s.logger.Error("device event skipped: not readable", "partition", rec.Partition, "offset", rec.Offset, "err", err)
			continue
		}
		if ev.Type == events.DeviceHeartbeat {
			// Not de-duplicated by its ID: a heartbeat that comes
			// again, or late, moves nothing (last seen only grows).
			if err := s.applyHeartbeat(b, sd, ev); err != nil {
				return err
			}
			continue
		}
		ek := append(append([]byte(nil), prefixEvent...), ev.ID...)
		if _, _, seen, err := b.get(ek); err != nil {
			return err
		} else if seen {
			continue // redelivered
		}
		if ev.Type != events.DeviceReported {
			if err := s.applyStatus(b, sd, ev); err != nil {
				return err
			}
			b.set(badger.NewEntry(ek, nil).WithTTL(s.ttl))
			continue
		}
		if ev.Report == nil {
			s.logger.Error("device report event without a report skipped", "partition", rec.Partition, "offset", rec.Offset)
			continue
		}
		id := fmt.Sprintf("%08x%02x%014x", uint32(ev.Time.Unix()), uint8(rec.Partition), uint64(rec.Offset)&(1<<56-1))
		doc, err := storedReportJSON(id, ev.Time, decoded[i].report)
		if err != nil {
			return err
		}
		before, d, p, err := s.folding(b, ev.DeviceID)
		if err != nil {
			return err
		}
		known := p.alive
		was, wasVersion := d.DeviceGroup, d.AppliedVersion
		if !known || was != ev.DeviceGroup || wasVersion != ev.Report.AppliedVersion {
			if err := putApplied(b, ev.DeviceID, id, AppliedVersion{Version: ev.Report.AppliedVersion,
				DeviceGroup: ev.DeviceGroup, At: ev.Time, Report: id, Previous: wasVersion, PreviousGroup: was}); err != nil {
				return err
			}
		}
		d.DeviceID, d.DeviceGroup, d.Hostname, d.LastSeen = ev.DeviceID, ev.DeviceGroup, ev.Report.Hostname, ev.Time
		d.AppliedVersion, d.Apps, d.Errors, d.Labels = ev.Report.AppliedVersion, ev.Report.AppsStatus, ev.Report.Errors, ev.Report.Labels
		if err := s.putDevice(b, sd, d, before, p); err != nil {
			return err
		}
		for _, e := range []*badger.Entry{
			badger.NewEntry(append(append([]byte(nil), prefixReport...), id...), doc).WithTTL(s.ttl),
			badger.NewEntry(groupReportKey(ev.DeviceGroup, id), nil).WithTTL(s.ttl),
			badger.NewEntry(hostReportKey(ev.Report.Hostname, id), nil).WithTTL(s.ttl),
			badger.NewEntry(ek, nil).WithTTL(s.ttl),
		} {
			b.set(e)
		}
		b.stored++
	}
	for p, o := range b.next {
		b.set(badger.NewEntry(partitionKey(p), encodeInt(o)))
	}
	return sd.flush(b)
}

// Device returns the inventory's entry of a device, found=false if the
// store does not know it.
func (s *Store) Device(id string) (d Device, found bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		d, found, err = s.live(txnKV{txn}, id)
		return err
	})
	return d, found, err
}

// presence is how a device's d/ entry stands.
type presence struct {
	found bool   // d/ holds an entry (its index entries may still be there)
	alive bool   // and it has not expired (seen.go): the inventory has the device
	held  uint64 // when the entry expires
}

// device reads a device's inventory entry as stored (a new one if none).
func (s *Store) device(r kv, id string) (Device, presence, error) {
	v, expiresAt, found, err := r.get(deviceKey(id))
	if err != nil || !found {
		return Device{ConvergedAt: -1}, presence{}, err
	}
	return s.deviceOf(r, v, expiresAt, id)
}

// live reads a device's inventory entry (found=false if it has none, or
// it has expired).
func (s *Store) live(r kv, id string) (Device, bool, error) {
	d, p, err := s.device(r, id)
	return d, p.alive, err
}

// deviceOf reads the d/ entry of device id (v, expiring at expiresAt),
// its last seen moved by its k/ entry (seen.go).
func (s *Store) deviceOf(r kv, v []byte, expiresAt uint64, id string) (Device, presence, error) {
	d := Device{ConvergedAt: -1}
	if err := readDevice(v, &d); err != nil {
		return d, presence{}, fmt.Errorf("device entry %q is corrupt: %w", id, err)
	}
	k, found, err := seenOf(r, id)
	if err != nil {
		return d, presence{}, err
	}
	if found && k.last.After(d.LastSeen) {
		d.LastSeen = k.last
	}
	return d, presence{found: true, alive: !s.expired(d.LastSeen), held: expiresAt}, nil
}

// folding reads a device for the fold: as stored, and what the event
// starts from (the stored device if alive, a new one if not).
func (s *Store) folding(r kv, id string) (stored, d Device, p presence, err error) {
	stored, p, err = s.device(r, id)
	d = stored
	if !p.alive {
		d = Device{ConvergedAt: -1}
	}
	return stored, d, p, err
}

// applyStatus folds a status event into the device's entry; one that
// changes nothing (a restarted reporter's "online") is a no-op.
func (s *Store) applyStatus(b *batch, sd *standingDelta, ev events.DeviceEvent) error {
	stored, d, p, err := s.folding(b, ev.DeviceID)
	if err != nil {
		return err
	}
	if !p.alive {
		d.DeviceID, d.DeviceGroup, d.LastSeen = ev.DeviceID, ev.DeviceGroup, ev.Time
	}
	was := d
	switch ev.Type {
	case events.DeviceOnline:
		d.Silent = false
	case events.DeviceSilent:
		d.Silent = true
	case events.DeviceConverged:
		d.ConvergedAt, d.Failure = ev.Version, ""
	case events.DeviceFailed:
		d.Failure = ev.Detail
	default:
		s.logger.Warn("unknown device event type skipped", "type", ev.Type)
		return nil
	}
	if d.Silent == was.Silent && d.ConvergedAt == was.ConvergedAt && d.Failure == was.Failure && p.alive {
		return nil
	}
	d.StatusChangedAt = ev.Time
	return s.putDevice(b, sd, d, stored, p)
}

// applyHeartbeat moves a device's last seen to the heartbeat's time (if
// later). A heartbeat names the device's group and applied version; where
// they differ from what the store holds (its full report was lost: it
// expired, the store was rebuilt), the heartbeat's are taken.
func (s *Store) applyHeartbeat(b *batch, sd *standingDelta, ev events.DeviceEvent) error {
	if done, err := s.beat(b, sd, ev.DeviceID, ev.DeviceGroup, ev.Version, ev.Time); done || err != nil {
		return err
	}
	stored, d, p, err := s.folding(b, ev.DeviceID)
	if err != nil || p.alive && !ev.Time.After(d.LastSeen) {
		return err
	}
	d.DeviceID, d.DeviceGroup, d.AppliedVersion, d.LastSeen = ev.DeviceID, ev.DeviceGroup, ev.Version, ev.Time
	return s.putDevice(b, sd, d, stored, p)
}

func hostReportKey(hostname, id string) []byte {
	k := append(append([]byte(nil), prefixHostReport...), hostname...)
	return append(append(k, 0), id...)
}

func groupReportKey(group, id string) []byte {
	k := append(append([]byte(nil), prefixGroupReport...), group...)
	return append(append(k, 0), id...)
}

// Query is GET /reports' filters (Nebula 2.7's).
type Query struct {
	PageSize     int
	LastID       string  // the id of the last report of the previous page
	Hostname     *string // exact
	DeviceGroup  *string // exact
	CreationTime *int64  // report_creation_time compared with CreationOp
	CreationOp   string  // eq, gt, lt, gte, lte, ne
	Updated      *bool
}

// Reports returns a page of reports in id order after q.LastID, those of
// groups allowed(group) only. A hostname or a group is read through its
// index (the hostname's, the more selective, when both are given).
func (s *Store) Reports(q Query, allowed func(group string) bool) ([]StoredReport, error) {
	var out []StoredReport
	err := s.view(func(txn *badger.Txn) error {
		prefix, viaIndex := prefixReport, true
		switch {
		case q.Hostname != nil:
			prefix = hostReportKey(*q.Hostname, "")
		case q.DeviceGroup != nil:
			prefix = groupReportKey(*q.DeviceGroup, "")
		default:
			viaIndex = false
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		seek := append(append([]byte(nil), prefix...), q.LastID...)
		for it.Seek(seek); it.Valid() && len(out) < q.PageSize; it.Next() {
			id := string(it.Item().Key()[len(prefix):])
			if q.LastID != "" && id <= q.LastID {
				continue
			}
			item := it.Item()
			if viaIndex {
				var err error
				if item, err = txn.Get(append(append([]byte(nil), prefixReport...), id...)); err != nil {
					if errors.Is(err, badger.ErrKeyNotFound) {
						continue
					}
					return err
				}
			}
			b, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			var r StoredReport
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("stored report %s is corrupt: %w", id, err)
			}
			if q.matches(r.Report) && allowed(r.Report.DeviceGroup) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// RecentReports returns up to n of hostname's reports, the newest first
// (read backwards through the hostname index).
func (s *Store) RecentReports(hostname string, n int) ([]StoredReport, error) {
	out := []StoredReport{}
	err := s.view(func(txn *badger.Txn) error {
		prefix := hostReportKey(hostname, "")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		for it.Seek(append(bytes.Clone(prefix), 0xff)); it.Valid() && len(out) < n; it.Next() {
			id := string(it.Item().Key()[len(prefix):])
			item, err := txn.Get(append(append([]byte(nil), prefixReport...), id...))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue // expired a moment before its index entry
			} else if err != nil {
				return err
			}
			var r StoredReport
			if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return fmt.Errorf("stored report %s is corrupt: %w", id, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func (q Query) matches(r events.Report) bool {
	if q.Hostname != nil && r.Hostname != *q.Hostname || q.DeviceGroup != nil && r.DeviceGroup != *q.DeviceGroup ||
		q.Updated != nil && r.Updated != *q.Updated {
		return false
	}
	if q.CreationTime == nil {
		return true
	}
	v, t := r.ReportCreationTime, *q.CreationTime
	switch q.CreationOp {
	case "gt":
		return v > t
	case "lt":
		return v < t
	case "gte":
		return v >= t
	case "lte":
		return v <= t
	case "ne":
		return v != t
	}
	return v == t
}

// Reader reads the device events topic from given offsets.
type Reader interface {
	Fetch(ctx context.Context) ([]events.Record, error)
	// Bounds returns, per partition, the first offset still held and the
	// next offset to be written.
	Bounds(ctx context.Context) (starts, ends map[int32]int64, err error)
	Close()
}

// Follow folds the device events topic into the store until ctx
// ends, reopening the reader after errors. Until the store has folded
// what the topic held when it started (CatchingUp), it logs its progress
// every ProgressEvery.
func Follow[R Reader](ctx context.Context, s *Store, open func(from map[int32]int64) (R, error)) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := func() error {
			from, err := s.Offsets()
			if err != nil {
				return err
			}
			r, err := open(from)
			if err != nil {
				return err
			}
			defer r.Close()
			c, err := s.startCatchUp(ctx, r, from)
			if err != nil {
				return err
			}
			lctx, stopLag := context.WithCancel(ctx)
			var gc sync.WaitGroup
			gc.Go(func() { s.collectGarbage(lctx) })
			// A rebuild (DropAll) must not meet a value log GC.
			defer func() { stopLag(); gc.Wait() }()
			go s.watchLag(lctx, r)
			go s.cancelOnDamage(lctx, stopLag)
			for {
				if err := s.damage(); err != nil {
					return err
				}
				recs, err := r.Fetch(lctx)
				if err != nil {
					return err
				}
				if err := s.Apply(recs); err != nil {
					return err
				}
				c.folded(recs)
				backoff = time.Second
			}
		}()
		if ctx.Err() != nil {
			return
		}
		if derr := s.damage(); derr != nil {
			if err = s.rebuild(derr); err == nil {
				continue
			}
		}
		s.logger.Warn("device events unavailable; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// GCEvery is how often the value log's garbage (expired reports) is
// reclaimed.
const GCEvery = 5 * time.Minute

// collectGarbage rewrites the value log files mostly garbage (expired or
// replaced reports), every GCEvery until ctx ends.
func (s *Store) collectGarbage(ctx context.Context) {
	t := time.NewTicker(GCEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			badgerdir.ReclaimValueLog(ctx, s.db)
		}
	}
}

// ProgressEvery is how often a long catch-up or indexing logs its progress.
const ProgressEvery = 5 * time.Second

func encodeInt(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeInt(b []byte) int64 {
	if len(b) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(b))
}
