package badgerdir

// WithoutChangeFeed makes w look at every table at each Check, as it does
// where the kernel has no feed of changes (and when the feed overflows).
func WithoutChangeFeed(w *Watch) {
	if w.changes != nil {
		w.changes.close()
		w.changes = nil
	}
}
