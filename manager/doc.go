// Package manager is the manager's HTTP side: the Nebula v2 REST API
// (/api/v2/...) served from the projection, and /metrics.
//
// It reads through small interfaces it declares (Projection, LogEnd) and
// never touches Kafka or Badger directly; cmd/nebula wires it.
package manager
