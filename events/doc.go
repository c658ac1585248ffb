// Package events owns the vocabulary of the Nebula event log: the envelope
// every record carries, one payload type per configuration event (in the past
// tense, with its wire name as a string constant), the specifications those
// payloads carry, and the codec that turns log records into envelopes,
// upcasting payloads written under an older schema.
//
// The catalogue with every wire name, aggregate and schema history is
// docs/events.md; testdata/ holds a golden record for every schema version of
// every event, decoded by the tests so that a record once written stays
// readable forever.
//
// This package has no I/O: the log itself lives in events/kafkalog.
package events
