package engine

import (
	"errors"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/flight"
)

// Renewal of near copies. A copy that is read often would otherwise lapse
// every near TTL, and the Gets that meet the lapse wait for a forward to the
// owner. So a Get served from a copy in the second half of its life starts
// a forward of the key in the background, off the caller's path, and the
// answer replaces the copy with a fresh one. Keys read less than about twice
// per TTL rarely renew: their copies lapse as before, and a renewal of a copy
// nobody reads again would be a message for nothing.
//
// Not with between pushLease/2 and pushLease left: a pushed copy (written
// values the owner sends after a write, near_push.go) lives pushLease, and a
// key written every few milliseconds, whose every write brings a new push,
// would otherwise renew at each one. In its last pushLease/2 a pushed copy
// does renew: a key written less often than that and read in between then
// returns to a full lease without a caller waiting.
//
// A renewal is an ordinary forward with no caller: it leads the key's
// forward flight (so Gets whose copy lapses meanwhile join it instead of
// sending their own), the owner records this node as a holder before it
// answers, and the answer is kept only under the rules of any forward (not
// superseded by a write, same flush generation, caching not paused), tagged
// with the ring it was asked under. It never degrades to a local load: if
// the owner cannot answer, the copy lapses and the next Get forwards as
// usual. After a failed renewal the keyspace renews nothing for
// renewBackoff, so a hot key does not spin against an owner that is down.

// renewBackoff is how long a keyspace starts no renewal after one failed.
const renewBackoff = 100 * time.Millisecond

// errRenewalFailed is what a renewal hands the Gets that joined its flight
// when it got no answer: they ask the owner themselves (forwardGet), with
// the degraded fallbacks a renewal does not take.
var errRenewalFailed = errors.New("distcache: near copy renewal failed")

// renewDue reports whether a copy that expires at exp (not zero), served at
// now, should be renewed (see above).
func renewDue(st *ksState, exp, now time.Time) bool {
	left := exp.Sub(now)
	return left < st.settings.NearCacheTTL/2 && (left > pushLease || left < pushLease/2)
}

// renewNear starts a background renewal of key's near copy unless a forward
// of the key is in flight or the keyspace is backing off.
func (e *Engine) renewNear(st *ksState, key string, owner cluster.Member, ringVersion uint64) {
	if time.Now().UnixNano() < st.renewQuietUntil.Load() || e.missed.pending(owner.Name) {
		return
	}
	l := st.forwards.Lock(key)
	if l.Current() != nil {
		l.Unlock()
		return
	}
	f := l.Lead(e.flushGen())
	l.Unlock()
	if !e.spawn(func() { e.runRenewal(st, key, owner, ringVersion, f) }) {
		l = st.forwards.Lock(key)
		l.Unlink(f)
		l.Unlock()
		f.Publish(nil, errRenewalFailed)
	}
}

// runRenewal asks the owner for key and keeps the answer as the key's near
// copy, leading flight f.
func (e *Engine) runRenewal(st *ksState, key string, owner cluster.Member, ringVersion uint64, f *flight.Flight) {
	st.stats.nearRenewals.Add(1)
	sent := time.Now()
	payload, err := e.peers.get(e.base, owner, st.name, key, true, sent.Add(st.settings.ReadTimeout))
	var (
		val []byte
		exp time.Time
	)
	if err == nil {
		val, exp, err = nearAnswer(payload, sent)
	}
	l := st.forwards.Lock(key)
	l.Unlink(f)
	if err == nil && e.nearKeepable(l, f) {
		nearPut(st, key, val, exp, ringVersion, f.Gen())
	}
	l.Unlock()
	if err != nil {
		st.renewQuietUntil.Store(time.Now().Add(renewBackoff).UnixNano())
		f.Publish(nil, errRenewalFailed)
		return
	}
	f.Publish(val, nil)
}
