package projections

import (
	"crypto/ed25519"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
)

// TestUnsignedRecordsAreRejected (finding 6 of issue 22): with a trusted
// record key, once the log holds a signed record, a record no trusted key
// signed is rejected and changes nothing: it creates no user and takes no
// command ID. Records from before signing keep their verdicts.
func TestUnsignedRecordsAreRejected(t *testing.T) {
	_, keyA, _ := ed25519.GenerateKey(nil)
	_, keyB, _ := ed25519.GenerateKey(nil)
	a, b := signing.NewSigner(keyA), signing.NewSigner(keyB)
	trust := signing.NewTrust(a.Public())
	kv := MemKV{}
	off := int64(0)
	fold := func(env events.Envelope, sign func([]byte) []byte) Verdict {
		t.Helper()
		v, err := events.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		rec := events.Record{Offset: off, Value: v, CommandID: env.CommandID}
		if sign != nil {
			rec.Signature = sign(v)
		}
		off++
		res, err := ApplyTrusted(kv, rec, trust)
		if err != nil {
			t.Fatal(err)
		}
		return res.Verdict
	}
	user := func(name, cmd string) events.Envelope {
		e := ev(events.KindUser, name, events.UserCreatedV{PasswordHash: "$2a$12$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza",
			TokenSHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
		e.CommandID = cmd
		return e
	}
	app := ev(events.KindApp, "old", events.AppCreatedV{Spec: events.NewAppSpec("nginx")})
	if v := fold(app, nil); !v.Accepted {
		t.Fatalf("an unsigned record before any signed one: %+v", v)
	}
	if v := fold(ev(events.KindApp, "web", events.AppCreatedV{Spec: events.NewAppSpec("nginx")}), a.Sign); !v.Accepted {
		t.Fatalf("a signed record: %+v", v)
	}
	for _, c := range []struct {
		name string
		sign func([]byte) []byte
	}{
		{"unsigned", nil},
		{"signed by an untrusted key", b.Sign},
		{"another record's signature", func([]byte) []byte { v, _ := events.Encode(app); return a.Sign(v) }},
		{"garbage", func([]byte) []byte { return []byte("not:a-signature") }},
	} {
		v := fold(user("forged", "cmd-1"), c.sign)
		if v.Accepted || v.Reason != ReasonUnsigned {
			t.Fatalf("%s: %+v, want rejected as unsigned", c.name, v)
		}
	}
	err := (Reader{kv}).kv.Keys([]byte("user/"), func(k []byte) error {
		t.Fatalf("a forged record made %s", k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The forged records took no command ID: the manager's own record
	// with that ID is not a duplicate.
	if v := fold(user("alice", "cmd-1"), a.Sign); !v.Accepted {
		t.Fatalf("a signed record with the command ID of forged ones: %+v", v)
	}
}
