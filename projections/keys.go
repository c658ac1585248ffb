package projections

import (
	"bytes"
	"encoding/binary"
)

// Key layout of the Badger store. Names are validated by the fold before
// they become keys (letters, digits, _ . - and @ for users: never '/' or
// NUL), and index keys separate their two names with a NUL byte.
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
//	idx/dg-app/<app>\x00<dg>     empty: device group <dg> lists app <app>
//	idx/dg-cron/<cron>\x00<dg>   empty: device group <dg> lists cron job <cron>
//	idx/ug-user/<user>\x00<ug>   empty: user group <ug> has member <user>
//
//	verdict/<offset int64 BE>    JSON Verdict of the record at that offset
//	cmd/<command id>             int64 BE: offset of the first record with that command ID
//
// Big-endian offsets sort in log order, so verdicts can be scanned by range.
var (
	keyApplied     = []byte("meta/applied")
	keyIdentity    = []byte("meta/identity")
	keyFoldVersion = []byte("meta/fold_version")
	keyStats       = []byte("meta/stats")

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
)

func key(prefix []byte, name string) []byte {
	k := make([]byte, 0, len(prefix)+len(name))
	return append(append(k, prefix...), name...)
}

// indexKey is prefix + a + NUL + b.
func indexKey(prefix []byte, a, b string) []byte {
	k := make([]byte, 0, len(prefix)+len(a)+1+len(b))
	k = append(append(k, prefix...), a...)
	k = append(k, 0)
	return append(k, b...)
}

// indexPrefix is the prefix of every index key whose first name is a.
func indexPrefix(prefix []byte, a string) []byte {
	return append(key(prefix, a), 0)
}

// indexSecond returns the second name of an index key.
func indexSecond(k []byte) string {
	return string(k[bytes.IndexByte(k, 0)+1:])
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
