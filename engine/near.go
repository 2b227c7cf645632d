package engine

import (
	"encoding/binary"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
)

// The near cache (WithKeySpaceNearCache) keeps, on a node that is not a
// key's owner, the value it last fetched from the owner, so that repeated
// Gets of a hot remote key cost a local lookup instead of a network hop.
// It lives in its own store per keyspace (st.near), apart from the owned
// entries, so that it never competes with them for the keyspace budget.
//
// A near copy is served only while all of these hold:
//   - it has not expired: its expiry is the earlier of now+NearCacheTTL and
//     the entry's own expiry, which the owner sends with the value;
//   - the ring is the one the copy was fetched under: each copy is tagged
//     with cluster.Ring.Version, so any membership change invalidates every
//     copy at once (a key whose ownership moved and came back is never
//     served from a copy older than the moves);
//   - no Put or Delete of the key has completed since: writes drop the copy
//     on every node before they return (invalidateOthers, deleteEverywhere
//     -> removeWritten -> dropNear), and also supersede a forward in flight,
//     so a response that left the owner before the write is not stored.
//
// A node that a write cannot reach keeps serving its copy until it expires:
// NearCacheTTL bounds that staleness (documented on the option).
//
//   - it was filled under the current flush generation (trust.go): a node
//     that may have missed writes serves none of the copies it had.
//
// Stored form: the ring version and the flush generation (8 bytes each, big
// endian), then the value.
const nearTagLen = 16

// getFlagExpiry in a Get request asks the owner to put the entry's expiry
// (8 bytes, unix ns, big endian; 0 = none) before the value. A near cache
// needs it to never outlive the entry.
const getFlagExpiry uint16 = 1

// expiryUnknown is sent when the owner returns a value it has not stored
// (a rejected or superseded load): a near cache must not keep it.
const expiryUnknown = 1

// nearGet appends a servable near copy of key to dst; gen is the current
// flush generation.
func nearGet(st *ksState, ring *cluster.Ring, gen uint64, key string, dst []byte) ([]byte, bool) {
	ent, ok := st.near.Peek(key)
	if !ok || !ent.Fresh() || !nearCurrent(ent.Value, ring, gen) {
		return dst, false
	}
	st.stats.nearHits.Add(1)
	return appendValue(dst, ent.Value[nearTagLen:]), true
}

// nearCurrent reports whether a stored near copy was filled under ring and
// flush generation gen.
func nearCurrent(stored []byte, ring *cluster.Ring, gen uint64) bool {
	return len(stored) >= nearTagLen && binary.BigEndian.Uint64(stored) == ring.Version() &&
		binary.BigEndian.Uint64(stored[8:]) == gen
}

// nearPut keeps a copy of val, fetched from its owner under the ring of
// version ringVersion and flush generation gen, with the entry's expiry
// exp. The caller holds the key's forward stripe lock and has checked that
// no write or flush superseded the fetch.
func nearPut(st *ksState, key string, val []byte, exp time.Time, ringVersion, gen uint64) {
	now := time.Now()
	until := now.Add(st.settings.NearCacheTTL)
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	if !until.After(now) {
		return
	}
	buf := make([]byte, nearTagLen+len(val))
	binary.BigEndian.PutUint64(buf, ringVersion)
	binary.BigEndian.PutUint64(buf[8:], gen)
	copy(buf[nearTagLen:], val)
	// Asynchronous: no wait for ristretto's admission on the forward path.
	// A full near cache may refuse the copy (the next Get forwards again);
	// a dropNear after this (it takes the stripe lock we hold) waits for it
	// to be applied and then removed (DeleteSettled), so an invalidated
	// copy never reappears.
	st.near.SetAsync(key, cache.Entry{Value: buf, ExpiresAt: until})
}

// dropNear is the write side: it supersedes the key's forward in flight
// (its response may predate the write) and removes it from the table, so
// that a Get after the write starts a new forward rather than joining the
// old one, and drops the key's near copy.
func dropNear(st *ksState, key string) {
	l := st.forwards.Lock(key)
	l.Supersede()
	if st.near != nil {
		st.near.DeleteSettled(key) // a copy set just before must not reappear
	}
	l.Unlock()
}

// purgeNear frees the near copies fetched under older rings or flush
// generations (they are never served again; this only returns their
// memory).
func purgeNear(st *ksState, ring *cluster.Ring, gen uint64) {
	var old []string
	st.near.Range(func(key string, ent cache.Entry) bool {
		if !nearCurrent(ent.Value, ring, gen) {
			old = append(old, key)
		}
		return true
	})
	for _, k := range old {
		st.near.Delete(k)
	}
}

// appendExpiry encodes an entry's expiry for a getFlagExpiry response.
func appendExpiry(dst []byte, exp time.Time) []byte {
	return binary.BigEndian.AppendUint64(dst, expiryNanos(exp)) // 0: none; 1 (expiryUnknown): expired
}

// withExpiry builds a getFlagExpiry response payload: exp, then a copy of val.
func withExpiry(exp time.Time, val []byte) []byte {
	return append(appendExpiry(make([]byte, 0, 8+len(val)), exp), val...)
}

// splitExpiry decodes a getFlagExpiry response.
func splitExpiry(p []byte) (val []byte, exp time.Time, err error) {
	if len(p) < 8 {
		return nil, time.Time{}, errBadPayload
	}
	if n := binary.BigEndian.Uint64(p); n != 0 {
		exp = time.Unix(0, int64(n))
	}
	return p[8:], exp, nil
}
