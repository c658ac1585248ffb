// Package signing is the proof that a manager wrote a record of the event
// log. The event log is the source of truth: without a proof, whoever can
// write the event topic could append a user.created of their own and be
// admin. With a record key configured, every manager signs each record it
// appends (ed25519 over the record's value), and the fold of every manager
// rejects a record that no trusted key signed, once the log holds a signed
// record (the records of a log from before signing stay as they were).
//
// The header of a signed record is "<key id>:<signature hex>"; the key id
// is the first 16 hex digits of the SHA-256 of the public key, so that a
// record names the key that signed it and keys can be rotated: trust the
// new key next to the old one on every manager, sign with the new one,
// then drop the old one.
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Header is the record header holding the signature.
const Header = "nebula-signature"

// domain separates record signatures from every other ed25519 use of a key.
const domain = "nebula-record\x00"

// KeyID names a public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Signer signs record values.
type Signer struct {
	key ed25519.PrivateKey
	id  string
}

// NewSigner returns a signer with key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, id: KeyID(key.Public().(ed25519.PublicKey))}
}

// Sign returns the header value for a record holding value.
func (s *Signer) Sign(value []byte) []byte {
	sig := ed25519.Sign(s.key, append([]byte(domain), value...))
	return fmt.Appendf(nil, "%s:%x", s.id, sig)
}

// Public is the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Trust is the set of keys whose records the fold accepts.
type Trust struct {
	keys map[string]ed25519.PublicKey
}

// NewTrust trusts keys.
func NewTrust(keys ...ed25519.PublicKey) *Trust {
	t := &Trust{keys: map[string]ed25519.PublicKey{}}
	for _, k := range keys {
		t.keys[KeyID(k)] = k
	}
	return t
}

// Verify reports whether header is a trusted key's signature of value.
func (t *Trust) Verify(value, header []byte) bool {
	id, sigHex, ok := strings.Cut(string(header), ":")
	if !ok {
		return false
	}
	key, known := t.keys[id]
	sig, err := hex.DecodeString(sigHex)
	if !known || err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(key, append([]byte(domain), value...), sig)
}

// Fingerprint names the set of trusted keys: a projection built with
// another set is rebuilt (the verdicts depend on it).
func (t *Trust) Fingerprint() string {
	if t == nil {
		return ""
	}
	ids := make([]string, 0, len(t.keys))
	for id := range t.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// LoadKey reads an ed25519 private key: a file holding the 32-byte seed
// in hex.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("record key: %w", err)
	}
	key, err := ParseSeed(string(b))
	if err != nil {
		return nil, fmt.Errorf("record key %s: %w", path, err)
	}
	return key, nil
}

// ParseSeed reads an ed25519 private key from its 32-byte seed in hex.
func ParseSeed(s string) (ed25519.PrivateKey, error) {
	seed, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("want the 32-byte ed25519 seed in hex (64 hex digits)")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKeys reads a comma-separated list of ed25519 public keys in
// hex.
func ParsePublicKeys(list string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("trusted record key %q: want %d bytes in hex", s, ed25519.PublicKeySize)
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// CreateKey writes a new ed25519 seed, in hex, to path (which must not
// exist; its directory is made), readable by its owner only, and returns
// the key.
func CreateKey(path string) (ed25519.PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("record key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record key: %w", err)
	}
	_, err = fmt.Fprintf(f, "%x\n", seed)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("record key %s: %w", path, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// EnsureKey loads the key in path, or creates it there when there is no
// file; created says which.
func EnsureKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		key, err := CreateKey(path)
		return key, err == nil, err
	}
	key, err = LoadKey(path)
	return key, false, err
}
