// Package projections folds the event log into read state: a deterministic
// fold (state + event -> new state and an accept/reject verdict recorded per
// offset), a Badger store holding that state together with the offset
// applied last, in the same transaction, and the projector that feeds the
// store from the log, checks that the store was built from this very log,
// and rebuilds it from offset 0 when it was not.
//
// Every manager runs the same fold over the same log order, so every
// manager reaches the same verdict for every offset: that is how two
// managers racing to create the same name agree on the winner.
//
// keys.go documents the key layout. Subpackages: past reads the
// configuration as it was (time travel, history, what a revert restores);
// reports folds the device events topic into a store of its own.
package projections
