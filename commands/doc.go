// Package commands turns API mutations into events. A command validates its
// input, checks it against the projection (so that a request that cannot
// succeed appends nothing), appends its event, waits until the projection
// has folded that offset, and answers from the fold's verdict: the fold,
// not this package, decides, so every manager agrees even when two of them
// race on one name.
package commands
