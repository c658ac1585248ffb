// Package commands turns API mutations into events. A command validates its
// input once (names and the payload; nothing that depends on state), asks
// the fold whether its event would be accepted now (Projection.DryRun folds
// it on top of the current state with the same code that folds the log, so
// a request that cannot succeed appends nothing), appends the event, waits
// until the projection has folded that offset, and answers from the fold's
// verdict. No rule about whether a command succeeds is written here: the
// fold decides, so every manager agrees even when two of them race on one
// name, and a refusal carries what the fold found (the missing member, the
// validation error) as data.
package commands
