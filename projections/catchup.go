package projections

import (
	"context"
	"time"
)

// CatchUpWait bounds how long CatchUp waits.
const CatchUpWait = 5 * time.Second

// CatchUp waits (up to CatchUpWait) until the projection p has folded the
// log up to its end as it is now, and reports whether it has. Behind a
// load balancer, a write acknowledged by another manager a moment ago may
// not be folded here yet: whatever would answer "does not exist" or
// refuse because of it catches up first (a nil log: it cannot).
func CatchUp(ctx context.Context, log interface {
	Bounds(ctx context.Context) (start, end int64, err error)
}, p interface {
	WaitFor(ctx context.Context, offset int64) error
}) bool {
	if log == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, CatchUpWait)
	defer cancel()
	_, end, err := log.Bounds(ctx)
	if err != nil {
		return false // the log cannot say more
	}
	return end == 0 || p.WaitFor(ctx, end-1) == nil
}
