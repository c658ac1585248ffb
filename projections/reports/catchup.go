package reports

import (
	"context"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// CatchingUp says whether the store is still folding what the device
// events topic held when following began (behind: how many events of it
// are left; -1 before following begins). Until then its devices, reports
// and rollouts are incomplete.
func (s *Store) CatchingUp() (catchingUp bool, behind int64) {
	b := s.behind.Load()
	return b != 0, b
}

// reportCatchUp counts down what the store has to fold to catch up with
// the topic's ends when following began, and logs the progress.
type reportCatchUp struct {
	s       *Store
	target  map[int32]int64 // end offsets when following began
	next    map[int32]int64 // next offset to fold, per partition
	start   time.Time
	logged  time.Time
	initial int64
}

// startCatchUp reads the topic's bounds (once caught up, the store stays
// so through reconnections).
func (s *Store) startCatchUp(ctx context.Context, r Reader, from map[int32]int64) (*reportCatchUp, error) {
	c := &reportCatchUp{s: s, next: map[int32]int64{}, start: time.Now()}
	c.logged = c.start
	if s.behind.Load() == 0 {
		return c, nil
	}
	starts, ends, err := r.Bounds(ctx)
	if err != nil {
		return nil, err
	}
	c.target = ends
	for p, o := range starts {
		c.next[p] = max(o, from[p]) // what retention deleted is not to be folded
	}
	c.initial = c.left()
	c.update()
	if c.initial > 0 {
		s.logger.Info("folding the device events the topic holds; devices, reports and rollouts are incomplete until done", "events", c.initial)
	}
	return c, nil
}

// left is how many events up to the target are not folded.
func (c *reportCatchUp) left() int64 {
	var n int64
	for p, end := range c.target {
		n += max(0, end-c.next[p])
	}
	return n
}

func (c *reportCatchUp) update() {
	if c.target == nil {
		return
	}
	n := c.left()
	c.s.behind.Store(n)
	if n == 0 {
		c.target = nil
		if c.initial > 0 {
			c.s.logger.Info("device events caught up", "events", c.initial, "took", time.Since(c.start).Round(time.Millisecond))
		}
	}
}

// folded takes a batch the store folded.
func (c *reportCatchUp) folded(recs []events.Record) {
	if c.target == nil {
		return
	}
	for _, r := range recs {
		c.next[r.Partition] = max(c.next[r.Partition], r.Offset+1)
	}
	c.update()
	if c.target != nil && time.Since(c.logged) >= ProgressEvery {
		c.logged = time.Now()
		c.s.logger.Info("folding device events", "left", c.s.behind.Load(), "of", c.initial)
	}
}

// Lag is how many device events the topic holds that the store has not
// folded, as of the last check (-1: not known yet). A lag that keeps
// growing means the fleet reports faster than this manager folds.
func (s *Store) Lag() int64 { return s.lag.Load() }

// watchLag checks the lag every LagEvery until ctx ends, and logs when
// the store starts falling behind (the lag grew at 3 checks in a row) and
// when it no longer is.
func (s *Store) watchLag(ctx context.Context, r Reader) {
	t := time.NewTicker(s.LagEvery)
	defer t.Stop()
	grew, falling := 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, ends, err := r.Bounds(ctx)
		if err != nil {
			continue // the fetch loop reports the cluster's errors
		}
		next, err := s.Offsets()
		if err != nil {
			continue
		}
		var lag int64
		for p, end := range ends {
			if o, ok := next[p]; ok {
				lag += max(0, end-o)
			} else {
				lag += end // not read yet (retention may have deleted some: an upper bound)
			}
		}
		before := s.lag.Swap(lag)
		switch {
		case lag > before && before >= 0:
			grew++
		case lag < before:
			grew = 0
		}
		switch {
		case grew >= 3 && !falling:
			falling = true
			s.logger.Warn("the device events come faster than this manager folds them: devices, reports and rollouts fall behind", "events_behind", lag)
		case falling && grew == 0 && lag <= before:
			falling = false
			s.logger.Info("the device events are folded as fast as they come again", "events_behind", lag)
		}
	}
}
