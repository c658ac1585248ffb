// Package worker is the device agent: it polls its device group's config
// from a manager and reconciles the local Docker engine to it. Built in
// issue 4.
package worker
