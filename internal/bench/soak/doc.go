// Package soak holds `make soak`: the whole system (broker, manager and
// reporter processes, a simulated fleet) under steady polls, reports and
// commands for a bounded time, printing error counts, p99 drift and RSS
// growth each minute, and failing on errors, drift or growth.
package soak
