package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// LogInfo is what the projector asks the event log about itself.
type LogInfo interface {
	// Identity names the log (cluster and topic incarnation).
	Identity(ctx context.Context) (events.LogIdentity, error)
	// Bounds returns the first offset and the offset of the next record.
	Bounds(ctx context.Context) (start, end int64, err error)
}

// RecordReader reads the log in order from the offset it was opened at.
// It must never rewind by itself: an offset the log does not hold is an
// error.
type RecordReader interface {
	Fetch(ctx context.Context) ([]events.Record, error)
	Close()
}

// OpenReader opens a reader at an exact offset.
type OpenReader func(from int64) (RecordReader, error)

// Projector keeps a Store folded up to the end of the log.
type Projector struct {
	store  *Store
	log    LogInfo
	open   OpenReader
	logger *slog.Logger
	// Backoff between attempts when the log is unreachable, and between
	// two questions to Hold.
	Backoff time.Duration
	// Hold, when set, is asked before each batch is folded; while it
	// returns an error (the disk is nearly full) nothing is folded and
	// the projection is served as it is.
	Hold func() error

	ready     chan struct{}
	readyOnce sync.Once
	serving   atomic.Bool
	rebuilds  atomic.Uint64
	aside     atomic.Bool // a rebuild aside runs (aside.go)
}

// NewProjector returns a projector feeding store from the log.
func NewProjector(store *Store, log LogInfo, open OpenReader, logger *slog.Logger) *Projector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Projector{store: store, log: log, open: open, logger: logger, Backoff: time.Second, ready: make(chan struct{})}
}

// Ready is closed once the projection has caught up with the end the log
// had when the projector started: before that, it may lack objects that
// exist, and must not answer for them.
func (p *Projector) Ready() <-chan struct{} { return p.ready }

// Serving reports whether the projection may answer for the log: it has
// caught up with the log's end as it was when the projector started or,
// after a rebuild from offset 0 while running (the log was wiped or
// restored under it), as it was when the rebuild began. A projection
// being rebuilt holds an old state of the log, a group without the apps
// added to it since, say: devices served from it would undo changes.
func (p *Projector) Serving() bool {
	if p.store.isDamaged() {
		return false // until the rebuild, which begins at once
	}
	return p.serving.Load()
}

// Rebuilds counts the rebuilds that began while running (each after
// Serving went false, before the store empties): an answer read while
// this count changed may hold a partial state.
func (p *Projector) Rebuilds() uint64 { return p.rebuilds.Load() }

// ErrLogTruncated: the log no longer holds records the projection needs
// (its start is past the projection's next offset). Rebuilding cannot help.
var ErrLogTruncated = errors.New("event log lost its beginning")

// Run folds the log into the store until ctx ends (nil) or the projection
// cannot go on (a record it cannot fold, a truncated log): then the store
// is marked failed and the error returned. An unreachable log is waited
// for; it is not an error.
func (p *Projector) Run(ctx context.Context) error {
	down := false // log the transitions of the log's reachability, not every retry
	for {
		from, end, err := p.prepare(ctx)
		if err == nil {
			if down {
				p.logger.Info("event log reachable again")
				down = false
			}
			err = p.followUntilDamaged(ctx, from, end)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrLogTruncated), errors.As(err, new(*RecordError)):
			p.store.Fail(err)
			return err
		case errors.Is(err, ErrDamaged):
			continue // prepare rebuilds it now
		case err != nil && !down:
			p.logger.Warn("event log unavailable; serving the projection as it is and retrying", "err", err)
			down = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.Backoff):
		}
	}
}

// prepare checks that the store was built from this log by this fold and
// that the log still holds what comes next; otherwise it rebuilds. It
// returns the offset to read from and the log's end.
func (p *Projector) prepare(ctx context.Context) (from, end int64, err error) {
	id, err := p.log.Identity(ctx)
	if err != nil {
		return 0, 0, err
	}
	start, end, err := p.log.Bounds(ctx)
	if err != nil {
		return 0, 0, err
	}
	meta, err := p.store.Meta()
	if err != nil {
		return 0, 0, err
	}
	rebuild := ""
	damaged, _ := p.store.damage()
	switch {
	case damaged != nil:
		rebuild = damaged.Error()
	case meta.Identity == nil:
		if meta.Applied >= 0 {
			rebuild = "the projection does not record which log it was built from"
		}
	case *meta.Identity != id:
		rebuild = fmt.Sprintf("the projection was built from another log (cluster %s, topic %s id %s); this log is cluster %s, topic %s id %s",
			meta.Identity.ClusterID, meta.Identity.Topic, meta.Identity.TopicID, id.ClusterID, id.Topic, id.TopicID)
	case meta.FoldVersion != FoldVersion:
		rebuild = fmt.Sprintf("the projection was built by fold version %d, this is %d", meta.FoldVersion, FoldVersion)
	case meta.Trust != p.store.trust.Fingerprint():
		rebuild = fmt.Sprintf("the projection was built trusting the record keys [%s], this manager trusts [%s]", meta.Trust, p.store.trust.Fingerprint())
	case meta.Applied >= end:
		rebuild = fmt.Sprintf("the log ends before offset %d but the projection has folded up to offset %d: the log was wiped or truncated", end, meta.Applied)
	}
	// A manager that serves, or starts on a state it served before (a new
	// fold version, another log), rebuilds aside and serves that state
	// meanwhile; a first start or a damaged store rebuilds in place.
	hasState := meta.Identity != nil && meta.Applied >= 0
	if rebuild != "" && damaged == nil && (p.serving.Load() || hasState) && p.store.canRebuildAside() {
		p.serving.Store(true)
		if err := p.rebuildAside(ctx, rebuild); err != nil {
			return 0, 0, err
		}
		if meta, err = p.store.Meta(); err != nil {
			return 0, 0, err
		}
		rebuild = ""
	}
	if meta.Identity == nil || rebuild != "" {
		if rebuild != "" {
			p.logger.Warn("rebuilding the projection from offset 0; not serving until it catches up", "reason", rebuild)
		}
		p.serving.Store(false) // before the store empties
		p.rebuilds.Add(1)
		if err := p.store.Reset(id); err != nil {
			return 0, 0, err
		}
		meta.Applied = -1
	}
	from = meta.Applied + 1
	if from < start {
		return 0, 0, fmt.Errorf("%w: it starts at offset %d, the projection needs offset %d (was the topic's retention changed?)", ErrLogTruncated, start, from)
	}
	p.logger.Info("projection following the event log", "from_offset", from, "log_end", end, "topic", id.Topic)
	return from, end, nil
}

// followUntilDamaged is follow, stopped when the store is found damaged
// (Run then rebuilds it at once).
func (p *Projector) followUntilDamaged(ctx context.Context, from, end int64) error {
	_, damaged := p.store.damage()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-damaged:
			cancel()
		case <-fctx.Done():
		}
	}()
	err := p.follow(fctx, from, end)
	if d, _ := p.store.damage(); d != nil && ctx.Err() == nil {
		return d
	}
	return err
}

// ProgressEvery is how often a long catch-up logs its progress.
const ProgressEvery = 5 * time.Second

// follow reads from offset from and folds every fetch in one batch until
// an error or the end of ctx. It logs progress while catching up to the
// log's end as it was at the start, and once when it gets there.
func (p *Projector) follow(ctx context.Context, from, end int64) error {
	r, err := p.open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	chained, head, err := p.store.ChainHead()
	if err != nil {
		return err
	}
	next, stop := readAhead(ctx, r, chainState{chained, head}, p.store.trust)
	defer stop()
	a := p.store.newApplier(false)
	defer a.close() // an error here is the next prepare's to find
	started, folded0 := time.Now(), p.store.Folded()
	caughtUp := func() {
		p.serving.Store(true)
		p.readyOnce.Do(func() { close(p.ready) })
		p.logger.Info("projection caught up", "applied_offset", p.store.Applied(),
			"folded", p.store.Folded()-folded0, "took", time.Since(started).Round(time.Millisecond))
	}
	behind := from < end
	if !behind {
		caughtUp()
	}
	lastProgress := started
	for {
		f, err := receive(ctx, next)
		if err != nil {
			return err
		}
		if err := p.hold(ctx); err != nil {
			return err
		}
		if err := a.apply(f.recs, f.decoded); err != nil {
			return err
		}
		if !behind {
			continue
		}
		if a.folded >= end-1 {
			// Ready means readable: wait for the commit.
			if err := a.wait(); err != nil {
				return err
			}
			behind = false
			caughtUp()
		} else if applied := p.store.Applied(); time.Since(lastProgress) >= ProgressEvery {
			lastProgress = time.Now()
			p.logger.Info("projection catching up", "applied_offset", applied, "log_end", end,
				"percent", 100*(applied-from+1)/max(end-from, 1))
		}
	}
}

// hold waits while Hold says no, logging when folding pauses and resumes.
func (p *Projector) hold(ctx context.Context) error {
	if p.Hold == nil {
		return nil
	}
	err := p.Hold()
	if err == nil {
		return nil
	}
	p.logger.Error("folding paused", "err", err)
	for err != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.Backoff):
		}
		err = p.Hold()
	}
	p.logger.Info("folding resumed")
	return nil
}

// Rebuild empties the store and folds the log from offset 0 up to its
// current end, then returns. Run does the same on its own when the store
// does not match the log; this is the explicit, offline form.
func Rebuild(ctx context.Context, store *Store, log LogInfo, open OpenReader) error {
	id, err := log.Identity(ctx)
	if err != nil {
		return err
	}
	_, end, err := log.Bounds(ctx)
	if err != nil {
		return err
	}
	if err := store.Reset(id); err != nil {
		return err
	}
	if end == 0 {
		return nil
	}
	r, err := open(0)
	if err != nil {
		return err
	}
	defer r.Close()
	next, stop := readAhead(ctx, r, chainState{offset: -1}, store.trust) // the store is empty
	defer stop()
	a := store.newApplier(false)
	for a.folded < end-1 {
		f, err := receive(ctx, next)
		if err == nil {
			err = a.apply(f.recs, f.decoded)
		}
		if err != nil {
			a.close()
			return err
		}
	}
	return a.close()
}
