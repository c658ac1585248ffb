//go:build !agent

package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"

	"github.com/nebula-orchestrator/nebula-go/events/signing"
)

// runRecordKey makes a record key (`new FILE`) or shows the public half of
// one (`public FILE`): the key every manager of a cluster signs the
// records it appends with (--record-key).
func runRecordKey(_ context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	rest := args
	if len(rest) != 2 || (rest[0] != "new" && rest[0] != "public") {
		return usageError{fmt.Errorf("usage: nebula record-key new FILE (make a record key: an ed25519 seed, 64 hex digits, readable by its owner only)\n" +
			"       nebula record-key public FILE (print a record key's id and public key, for --record-trusted-keys while keys rotate)")}
	}
	var key ed25519.PrivateKey
	var err error
	if rest[0] == "new" {
		key, err = signing.CreateKey(rest[1])
	} else {
		key, err = signing.LoadKey(rest[1])
	}
	if err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	if rest[0] == "new" {
		fmt.Fprintf(stdout, "made %s: give every manager of the cluster a copy (--record-key %s)\n", rest[1], rest[1])
	}
	_, err = fmt.Fprintf(stdout, "key id %s\npublic key %x\n", signing.KeyID(pub), pub)
	return err
}
