// Package worker is the device agent: it polls its device group's config
// from a manager and reconciles the local Docker engine to it.
//
// The decision is pure: Plan compares what the group wants (apps and the
// facts of this host) with what runs (containers found by their labels)
// and returns the steps to take; the executor performs them through the
// Engine interface, which an adapter (worker/dockerengine) implements
// with the Docker Engine API.
package worker
