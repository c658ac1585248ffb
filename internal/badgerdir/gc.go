package badgerdir

import (
	"context"

	"github.com/dgraph-io/badger/v4"
)

// ReclaimValueLog rewrites, one after the other, the value-log files of db
// that are at least half garbage (values overwritten, deleted or expired),
// until none is left or ctx ends. Badger frees one file per call; a store
// that kept values in its value log (the projection's documents, reports)
// runs it periodically.
func ReclaimValueLog(ctx context.Context, db *badger.DB) {
	for ctx.Err() == nil && db.RunValueLogGC(0.5) == nil {
	}
}
