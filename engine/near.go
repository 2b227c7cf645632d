package engine

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/flight"
	"github.com/distcache/distcache/internal/membership"
)

// The near cache (WithKeySpaceNearCache) keeps, on a node that is not a
// key's owner, the value it last fetched from the owner, so that repeated
// Gets of a hot remote key cost a local lookup instead of a network hop.
// It lives in its own store per keyspace (st.near), apart from the owned
// entries, so that it never competes with them for the keyspace budget.
//
// A near copy is served only while all of these hold:
//   - it has not expired: its expiry is the earliest of now+NearCacheTTL,
//     the entry's own expiry and the end of the owner's lease, all of which
//     the owner sends with the value (see holders.go for the lease);
//   - the ring is the one the copy was fetched under: each copy is tagged
//     with the ring's version, so any membership change invalidates every
//     copy at once (a key whose ownership moved and came back is never
//     served from a copy older than the moves);
//   - no Put or Delete of the key has completed since: the owner recorded
//     this node as a holder when it answered, and a write drops the copy on
//     every recorded holder before it returns (invalidateCopies ->
//     serveInvalidate -> removeWritten -> dropNear); it also supersedes a
//     forward in flight, so a response that left the owner before the
//     write is not stored;
//   - it was filled under the current flush generation (trust.go): a node
//     that may have missed writes serves none of the copies it had.
//
// A node that a write cannot reach keeps serving its copy until the copy
// expires, so the write waits until the lease it was granted has lapsed
// before it is acknowledged (invalidateCopies), and the owner tells the
// node to flush once it can reach it. The lease, NearCacheTTL, is thus
// what an unreachable holder can cost a writer (documented on the option).
//
// Stored form: the ring version and the flush generation (8 bytes each, big
// endian), then the value.
const nearTagLen = 16

// getFlagExpiry in a Get request says that the asker will keep the value
// in its near cache: the owner records it as a holder for the near lease
// and puts the entry's expiry (8 bytes, unix ns, big endian; 0 = none) and
// the lease (8 bytes, ns) before the value. The copy never outlives either.
const getFlagExpiry uint16 = 1

// defaultNearLease is the near lease an owner grants when its own keyspace
// has no near cache configured.
const defaultNearLease = defaultNearCacheTTL

// nearLease is how long an owner lets an asker keep a near copy of one of
// st's keys: the keyspace's near TTL (the same on every node, like its
// other settings).
func nearLease(st *ksState) time.Duration {
	if st.settings.NearCacheTTL > 0 {
		return st.settings.NearCacheTTL
	}
	return defaultNearLease
}

// holderLease is how long an owner records the asker of a Get as a holder
// of the key: later Gets there may join its forward for forwardJoinWindow,
// and a near cache keeps the copy for the near lease.
func holderLease(st *ksState, flags uint16) time.Duration {
	if flags&getFlagExpiry != 0 {
		return max(forwardJoinWindow, nearLease(st))
	}
	return forwardJoinWindow
}

// expiryUnknown is sent when the owner returns a value it has not stored
// (a rejected or superseded load): a near cache must not keep it.
const expiryUnknown = 1

// nearGet appends a servable near copy of key to dst; gen is the current
// flush generation. A copy due for renewal is renewed from owner in the
// background (near_renew.go).
func (e *Engine) nearGet(st *ksState, ring *membership.Ring, gen uint64, key string, dst []byte, owner cluster.Member) ([]byte, bool) {
	ent, ok := st.near.Peek(key)
	if !ok || ent.Negative || !nearCurrent(ent.Value, ring, gen) { // Negative: a tombstone
		return dst, false
	}
	if !ent.ExpiresAt.IsZero() { // Fresh, spelled out: renewDue needs the same clock reading
		now := time.Now()
		if !now.Before(ent.ExpiresAt) {
			return dst, false
		}
		if renewDue(st, ent.ExpiresAt, now) {
			e.renewNear(st, key, owner, ring.Version())
		}
	}
	st.stats.nearHits.Add(1)
	return appendValue(dst, ent.Value[nearTagLen:]), true
}

// nearKeepable reports whether the answer of a forward that led flight f
// may be kept as a near copy: no write superseded it, and no flush or
// pause of caching came since it started. The caller holds the key's
// forward lock l.
func (e *Engine) nearKeepable(l flight.Locked, f *flight.Flight) bool {
	return !l.Superseded(f) && f.Gen() == e.flushGen() && !e.cachingPaused()
}

// nearCurrent reports whether a stored near copy was filled under ring and
// flush generation gen.
func nearCurrent(stored []byte, ring *membership.Ring, gen uint64) bool {
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
	// a write's removeWritten after this (its dropNear takes the stripe
	// lock we hold) settles the store, so an invalidated copy never
	// reappears.
	st.near.SetAsync(key, cache.Entry{Value: buf, ExpiresAt: until})
}

// dropNear is the write side: it supersedes the key's forward in flight
// (its response may predate the write) and removes it from the table, so
// that a Get after the write starts a new forward rather than joining the
// old one, and drops the key's near copy. A copy set just before may still
// reappear until the caller settles the near store (removeWritten): ristretto
// applies queued sets later, in order with the delete. A copy set after
// the delete is one a forward started after the write's invalidation
// fetched: the owner answers it with the written value.
//
// An invalidation from the key's owner (ver: its store version then)
// leaves a tombstone in place of a copy it drops, for the owner's push of
// the written value (near_push.go). The tombstone is queued behind the
// delete, so a copy set before cannot outlast it either.
func dropNear(st *ksState, key string, ver uint64, byOwner bool) {
	l := st.forwards.Lock(key)
	l.Supersede()
	if st.near != nil {
		var (
			old  cache.Entry
			held bool
		)
		if byOwner { // only an owner's invalidation leaves a tombstone
			old, held = st.near.Peek(key)
		}
		st.near.Delete(key)
		if held && len(old.Value) >= nearTagLen {
			exp := earlier(old.ExpiresAt, time.Now().Add(pushLease))
			st.near.SetAsync(key, cache.Entry{Value: nearTombstone(old.Value, ver), ExpiresAt: exp, Negative: true})
		}
	}
	l.Unlock()
}

// purgeNear frees the near copies fetched under older rings or flush
// generations (they are never served again; this only returns their
// memory).
func purgeNear(st *ksState, ring *membership.Ring, gen uint64) {
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

// withExpiry builds a getFlagExpiry response payload: exp, the lease, then
// a copy of val.
func withExpiry(exp time.Time, lease time.Duration, val []byte) []byte {
	b := appendExpiry(make([]byte, 0, 16+len(val)), exp)
	b = binary.BigEndian.AppendUint64(b, uint64(max(lease, 0)))
	return append(b, val...)
}

// nearAnswer splits an owner's answer to a getFlagExpiry Get sent at sent
// into the value (non-nil, even empty) and the copy's expiry: the entry's,
// or the end of the owner's lease if that comes first (holders.go).
func nearAnswer(payload []byte, sent time.Time) (val []byte, exp time.Time, err error) {
	val, exp, lease, err := splitExpiry(payload)
	if err != nil {
		return nil, exp, err
	}
	if end := sent.Add(lease); exp.IsZero() || end.Before(exp) {
		exp = end
	}
	if val == nil {
		val = []byte{}
	}
	return val, exp, nil
}

// splitExpiry decodes a getFlagExpiry response.
func splitExpiry(p []byte) (val []byte, exp time.Time, lease time.Duration, err error) {
	if len(p) < 16 {
		return nil, time.Time{}, 0, errBadPayload
	}
	if n := binary.BigEndian.Uint64(p); n != 0 {
		exp = time.Unix(0, int64(n))
	}
	l := binary.BigEndian.Uint64(p[8:])
	if l > uint64(math.MaxInt64) {
		return nil, time.Time{}, 0, errBadPayload
	}
	return p[16:], exp, time.Duration(l), nil
}
