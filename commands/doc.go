// Package commands turns API mutations into events: each command validates
// its input, decides against the projection, appends its event and waits
// for its own offset to be folded. Built in issue 3; the event catalogue it
// appends to is in package events.
package commands
