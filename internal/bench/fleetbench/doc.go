// Package fleetbench holds the fleet-scale benchmarks of `make bench`:
// the manager, nginx and the fleet simulator as separate processes on one
// machine, each number next to a baseline measured in the same run. The
// results go to $NEBULA_BENCH_OUT for docs/benchmarks.md.
package fleetbench
