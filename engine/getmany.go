package engine

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/keyspace"
)

// GetMany returns the values of keys: found keys are in the map, keys the
// DataSource does not have are absent, and every other failure is joined
// into the error, each naming its key (see KeyError); the map holds the
// successes even when the error is non-nil. Keys are grouped by owner: one
// request per remote owner, all owners in parallel.
func (e *Engine) GetMany(ctx context.Context, ks string, keys []string) (map[string][]byte, error) {
	if err := e.checkState(); err != nil {
		return nil, err
	}
	st, err := e.keyspace(ks)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := e.checkKey(k); err != nil {
			return nil, &KeyError{Key: k, Err: err}
		}
	}
	st.tel.calls[callGetMany].Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err // no fetch or forward for a caller that has gone
	}
	ctx, cancel := context.WithTimeout(ctx, st.settings.ReadTimeout)
	defer cancel()
	ctx, done := e.obs.start(ctx, "get_many", ks)
	out, err := e.getMany(ctx, st, keys)
	done(err)
	return out, err
}

type manyResult struct {
	mu   sync.Mutex
	vals map[string][]byte
	errs []error
}

// add records one key's outcome; shared values (from a store or a flight)
// are copied, owned ones (a peer's response buffer) are kept as they are.
func (r *manyResult) add(key string, val []byte, err error) { r.put(key, val, err, false) }

func (r *manyResult) put(key string, val []byte, err error, owned bool) {
	if err == nil && !owned {
		val = bytes.Clone(val)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.vals[key] = val
	case errors.Is(err, keyspace.ErrNotFound):
	default:
		r.errs = append(r.errs, &KeyError{Key: key, Err: err})
	}
}

func (e *Engine) getMany(ctx context.Context, st *ksState, keys []string) (map[string][]byte, error) {
	keys = dedupe(keys)
	st.tel.getManyKeys.Add(int64(len(keys))) // each is counted in Gets below
	res := &manyResult{vals: make(map[string][]byte, len(keys))}
	ring := e.cl.Ring()
	groups := groupByOwner(ring, keys)
	self := e.cl.Self().Name
	var wg sync.WaitGroup
	for owner, group := range groups {
		if owner.Name == self {
			// Hits are answered inline; only misses get a goroutine each,
			// so that their loads run in parallel.
			for _, k := range group {
				ent, ok := e.lookup(st, k)
				if ok && ent.Fresh() {
					v, err := st.hit(k, ent, nil) // a copy
					res.put(k, v, err, true)
					continue
				}
				stale := st.staleCandidate(ent, ok)
				wg.Go(func() {
					v, err := e.load(ctx, st, k, stale)
					res.add(k, v, err)
				})
			}
			continue
		}
		st.stats.remoteGets.Add(int64(len(group)))
		if st.near != nil {
			e.checkPause()
			gen := e.flushGen()
			// Near copies answer here; the rest go to the owner. (GetMany
			// does not fill the near cache: its answers carry no expiry.)
			rest := group[:0:0]
			for _, k := range group {
				if v, ok := e.nearGet(st, ring, gen, k, nil, owner); ok {
					res.put(k, v, nil, true)
				} else {
					rest = append(rest, k)
				}
			}
			if group = rest; len(group) == 0 {
				continue
			}
		}
		// Owners refuse requests of more than maxKeysPerRequest keys.
		for batch := range slices.Chunk(group, maxKeysPerRequest) {
			wg.Go(func() { e.forwardMany(ctx, st, owner, batch, res) })
		}
	}
	wg.Wait()
	return res.vals, errors.Join(res.errs...)
}

// groupByOwner splits keys by their owner in ring.
func groupByOwner(ring *membership.Ring, keys []string) map[cluster.Member][]string {
	groups := map[cluster.Member][]string{}
	for _, k := range keys {
		o := ring.Owner(k)
		groups[o] = append(groups[o], k)
	}
	return groups
}

func dedupe(keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}
