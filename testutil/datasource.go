package testutil

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/keyspace"
)

// DataSource is a keyspace.DataSource that counts fetches per key, with
// optional latency and injected errors. By default every key exists and its
// value is "value-of-<key>". Safe for concurrent use.
type DataSource struct {
	mu      sync.Mutex // guards counts, errs, missing, values
	counts  map[string]int
	errs    map[string]error
	missing map[string]bool
	values  map[string][]byte

	total     atomic.Int64
	latency   atomic.Int64 // time.Duration
	readDelay atomic.Int64 // time.Duration: the most a fetch waits before it reads
	failAll   atomic.Pointer[error]
	// fetching counts fetches in progress (for tests of coalescing).
	fetching atomic.Int64
	// gate, when set, blocks every fetch until it is closed.
	gate atomic.Pointer[chan struct{}]
}

// NewDataSource returns a DataSource where every key exists.
func NewDataSource() *DataSource {
	return &DataSource{counts: map[string]int{}, errs: map[string]error{}, missing: map[string]bool{}, values: map[string][]byte{}}
}

// ValueOf is the default value of key.
func ValueOf(key string) []byte { return []byte("value-of-" + key) }

// Fetch implements keyspace.DataSource.
func (d *DataSource) Fetch(ctx context.Context, key string) ([]byte, error) {
	d.total.Add(1)
	d.fetching.Add(1)
	defer d.fetching.Add(-1)
	if max := time.Duration(d.readDelay.Load()); max > 0 {
		if err := sleepCtx(ctx, rand.N(max)); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	d.counts[key]++
	err, missing, val, hasVal := d.errs[key], d.missing[key], d.values[key], false
	if val != nil {
		hasVal = true
	}
	d.mu.Unlock()
	if g := d.gate.Load(); g != nil {
		select {
		case <-*g:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if l := time.Duration(d.latency.Load()); l > 0 {
		t := time.NewTimer(l)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if p := d.failAll.Load(); p != nil {
		return nil, *p
	}
	switch {
	case err != nil:
		return nil, err
	case missing:
		return nil, fmt.Errorf("testutil: %q: %w", key, keyspace.ErrNotFound)
	case hasVal:
		return append([]byte(nil), val...), nil
	}
	return ValueOf(key), nil
}

// SetLatency makes every fetch take d (honouring ctx).
func (d *DataSource) SetLatency(l time.Duration) { d.latency.Store(int64(l)) }

// SetReadDelay makes every fetch wait a random time up to max (honouring
// ctx) before it reads its value, on top of the latency it waits after: a
// query that starts late reads a newer value, as a real one does on a busy
// database. Linearizability checks use it to make such interleavings
// common.
func (d *DataSource) SetReadDelay(max time.Duration) { d.readDelay.Store(int64(max)) }

// sleepCtx waits for d or ctx's end, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetError makes fetches of key fail with err (nil clears).
func (d *DataSource) SetError(key string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.errs, key)
		return
	}
	d.errs[key] = err
}

// FailAll makes every fetch fail with err (nil clears).
func (d *DataSource) FailAll(err error) {
	if err == nil {
		d.failAll.Store(nil)
		return
	}
	d.failAll.Store(&err)
}

// SetMissing makes key not exist (ErrNotFound) or exist again.
func (d *DataSource) SetMissing(key string, missing bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.missing[key] = missing
}

// SetValue sets key's value (nil restores the default).
func (d *DataSource) SetValue(key string, v []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v == nil {
		delete(d.values, key)
		return
	}
	d.values[key] = append([]byte(nil), v...)
}

// Hold blocks every fetch until the returned release function is called.
func (d *DataSource) Hold() (release func()) {
	ch := make(chan struct{})
	d.gate.Store(&ch)
	var once sync.Once
	return func() {
		once.Do(func() {
			d.gate.Store(nil)
			close(ch)
		})
	}
}

// Fetches returns how many times key was fetched.
func (d *DataSource) Fetches(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[key]
}

// Total returns the number of fetches of all keys.
func (d *DataSource) Total() int64 { return d.total.Load() }

// InFlight returns the number of fetches in progress.
func (d *DataSource) InFlight() int64 { return d.fetching.Load() }

// Reset zeroes the counters.
func (d *DataSource) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts = map[string]int{}
	d.total.Store(0)
}
