// Package reports folds the device events topic (what devices report, and
// the reporter's status events) into a Badger store of its own: the reports
// 2.7's API serves (with their TTL), the device inventory, and their
// indexes by group and by hostname. The topic offsets are stored in the
// same transactions, so every record is folded exactly once whatever
// restarts. It is apart from the config fold (package projections): its
// records are many, partitioned, and decide nothing about commands.
//
// store.go documents the key layout; catchup.go says how far the store is
// behind the topic (catching up at start, lag while it runs).
package reports
