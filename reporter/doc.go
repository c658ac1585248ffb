// Package reporter carries device reports back into the system as events.
// Built in issue 5.
package reporter
