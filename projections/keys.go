package projections

import (
	"encoding/binary"
)

// Key layout of the Badger store. Names are validated by the fold before
// they become keys (letters, digits, _ . - and @ for users: never '/').
//
//	meta/applied                 int64 BE: the offset of the last record folded
//	meta/identity                JSON events.LogIdentity of the log folded
//	meta/fold_version            int64 BE: FoldVersion of the code that built the state
//	meta/stats                   JSON Stats: counters of what was folded
//
//	app/<name>                   JSON App
//	dg/<name>                    JSON DeviceGroup
//	cron/<name>                  JSON CronJob
//	user/<name>                  JSON User
//	token/<sha256 hex>           user name: Bearer tokens looked up in O(1)
//	ug/<name>                    JSON UserGroup
//
//	idx/dg-app/<app>             JSON sorted []string: the device groups listing app <app>
//	idx/dg-cron/<cron>           JSON sorted []string: the device groups listing cron job <cron>
//	idx/ug-user/<user>           JSON sorted []string: the user groups with member <user>
//
// An index is one key per first name, never one key per pair: the fold
// must not iterate inside its write transaction (a Badger iterator there
// sorts every pending write, so a replay batch would go quadratic).
//
//	verdict/<offset int64 BE>    JSON Verdict of the record at that offset
//	cmd/<command id>             int64 BE: offset of the first record with that command ID
//	meta/chain_head              32 bytes: the hash chain after the last record folded
//	chain/<offset int64 BE>      32 bytes: the hash chain after that record (docs/events.md)
//
// Big-endian offsets sort in log order, so verdicts can be scanned by range.
var (
	keyApplied     = []byte("meta/applied")
	keyIdentity    = []byte("meta/identity")
	keyFoldVersion = []byte("meta/fold_version")
	keyStats       = []byte("meta/stats")
	keyChainHead   = []byte("meta/chain_head")

	prefixApp       = []byte("app/")
	prefixGroup     = []byte("dg/")
	prefixCron      = []byte("cron/")
	prefixUser      = []byte("user/")
	prefixToken     = []byte("token/")
	prefixUserGroup = []byte("ug/")

	prefixIdxGroupApp  = []byte("idx/dg-app/")
	prefixIdxGroupCron = []byte("idx/dg-cron/")
	prefixIdxGroupUser = []byte("idx/ug-user/")

	prefixVerdict = []byte("verdict/")
	prefixCommand = []byte("cmd/")
	prefixChain   = []byte("chain/")
)

func key(prefix []byte, name string) []byte {
	k := make([]byte, 0, len(prefix)+len(name))
	return append(append(k, prefix...), name...)
}

func offsetKey(prefix []byte, off int64) []byte {
	k := make([]byte, 0, len(prefix)+8)
	return binary.BigEndian.AppendUint64(append(k, prefix...), uint64(off))
}

func encodeInt(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeInt(b []byte) int64 {
	if len(b) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(b))
}
