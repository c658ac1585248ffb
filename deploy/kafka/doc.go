// Package kafka holds the production Kafka setup (compose.yaml,
// README.md); its test validates the compose file.
package kafka
