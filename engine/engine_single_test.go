package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

const ks = testutil.DefaultKeySpace

func startSingle(t *testing.T, opts ...engine.Option) (*engine.Engine, *testutil.DataSource) {
	t.Helper()
	ds := testutil.NewDataSource()
	e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 64<<20, ds)}, opts...)
	require.NoError(t, e.Start(context.Background()))
	return e, ds
}

// newEngine creates a lone engine on its own in-memory network (no socket:
// it also runs inside a synctest bubble), stopped at cleanup.
func newEngine(t *testing.T, kss []keyspace.KeySpace, opts ...engine.Option) *engine.Engine {
	t.Helper()
	all := append(testutil.LocalOptions("single-"+t.Name()), testutil.InMemory())
	all = append(all, opts...)
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), kss, all...))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

func TestGetReadThroughAndHit(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ctx := context.Background()
	v, err := e.Get(ctx, ks, "a")
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("a"), v)
	v, err = e.Get(ctx, ks, "a")
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("a"), v)
	require.Equal(t, 1, ds.Fetches("a"), "second Get is a hit")

	// The caller owns the returned bytes: scribbling on them changes nothing.
	v[0] = 'X'
	v2, err := e.Get(ctx, ks, "a")
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("a"), v2)

	st, _ := e.Stats().KeySpace(ks)
	require.EqualValues(t, 3, st.Gets)
	require.EqualValues(t, 2, st.Hits)
	require.EqualValues(t, 1, st.Fetches)
	require.EqualValues(t, 1, st.Entries)
}

func TestGetNotFoundIsTyped(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ds.SetMissing("nope", true)
	_, err := e.Get(context.Background(), ks, "nope")
	require.ErrorIs(t, err, keyspace.ErrNotFound)
	require.ErrorIs(t, err, engine.ErrNotFound)
}

func TestGetErrors(t *testing.T) {
	t.Parallel()
	e, _ := startSingle(t, engine.WithMaxKeyBytes(8))
	ctx := context.Background()
	_, err := e.Get(ctx, "unknown", "k")
	require.ErrorIs(t, err, engine.ErrKeySpaceNotFound)
	_, err = e.Get(ctx, ks, "")
	require.ErrorIs(t, err, engine.ErrEmptyKey)
	_, err = e.Get(ctx, ks, "123456789")
	require.ErrorIs(t, err, engine.ErrKeyTooLarge)
	err = e.Put(ctx, ks, engine.Entry{Key: "", Value: []byte("v")})
	require.ErrorIs(t, err, engine.ErrEmptyKey)
}

func TestValueTooLarge(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t, engine.WithMaxValueBytes(16))
	err := e.Put(context.Background(), ks, engine.Entry{Key: "k", Value: make([]byte, 17)})
	require.ErrorIs(t, err, engine.ErrValueTooLarge)
	ds.SetValue("big", make([]byte, 100))
	_, err = e.Get(context.Background(), ks, "big")
	require.ErrorIs(t, err, engine.ErrValueTooLarge)
}

// N concurrent misses of one key make one Fetch.
func TestSingleflight(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	release := ds.Hold()
	const n = 200
	var wg sync.WaitGroup
	var okCount atomic.Int32
	for range n {
		wg.Go(func() {
			v, err := e.Get(context.Background(), ks, "hot")
			if err == nil && string(v) == string(testutil.ValueOf("hot")) {
				okCount.Add(1)
			}
		})
	}
	testutil.WaitFor(t, 0, func() bool {
		st, _ := e.Stats().KeySpace(ks)
		return st.FetchesCoalesced == n-1
	}, "all callers waiting on one flight")
	release()
	wg.Wait()
	require.EqualValues(t, n, okCount.Load())
	require.Equal(t, 1, ds.Fetches("hot"))
}

// One waiter giving up does not cancel the shared fetch for the others.
func TestWaiterCancelDoesNotCancelFetch(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	release := ds.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := e.Get(ctx, ks, "k"); errc <- err }()
	testutil.WaitFor(t, 0, func() bool { return ds.InFlight() == 1 }, "fetch started")
	done := make(chan []byte, 1)
	go func() { v, _ := e.Get(context.Background(), ks, "k"); done <- v }()
	testutil.WaitFor(t, 0, func() bool { st, _ := e.Stats().KeySpace(ks); return st.FetchesCoalesced == 1 }, "second waiter joined")
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	release()
	require.Equal(t, testutil.ValueOf("k"), <-done)
	require.Equal(t, 1, ds.Fetches("k"))
}

func TestReadTimeout(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const timeout = 50 * time.Millisecond
		e, ds := startSingle(t, engine.WithKeySpaceReadTimeout(ks, timeout))
		ds.SetLatency(time.Second)
		start := time.Now()
		_, err := e.Get(context.Background(), ks, "slow")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, timeout, time.Since(start), "bounded by the keyspace read timeout, not the fetch")
	})
}

func TestPutGetDelete(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ctx := context.Background()
	val := []byte("mine")
	require.NoError(t, e.Put(ctx, ks, engine.Entry{Key: "p", Value: val}))
	val[0] = 'X' // Put copied the value
	v, err := e.Get(ctx, ks, "p")
	require.NoError(t, err)
	require.Equal(t, "mine", string(v))
	require.Zero(t, ds.Fetches("p"))

	require.NoError(t, e.Delete(ctx, ks, "p"))
	v, err = e.Get(ctx, ks, "p")
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("p"), v, "after Delete, Get loads afresh")
	require.Equal(t, 1, ds.Fetches("p"))
}

// Many goroutines Put distinct keys concurrently: every acknowledged Put is
// visible to the next Get on the node, none silently dropped (ristretto alone
// drops most of these).
func TestConcurrentPutsAllVisible(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ctx := context.Background()
	const workers, per = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers*per)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				k := fmt.Sprintf("w%d-%d", w, i)
				if err := e.Put(ctx, ks, engine.Entry{Key: k, Value: []byte(k)}); err != nil {
					errs <- err
					continue
				}
				v, err := e.Get(ctx, ks, k)
				if err != nil || string(v) != k {
					errs <- fmt.Errorf("%s: got %q, %v", k, v, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, ds.Total(), "no Get reached the DataSource")
	st, _ := e.Stats().KeySpace(ks)
	require.EqualValues(t, workers*per, st.Entries)
}

// A load that finishes after a newer Put of the same key never overwrites it.
func TestSlowLoadDoesNotOverwritePut(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ctx := context.Background()
	release := ds.Hold()
	got := make(chan []byte, 1)
	go func() { v, _ := e.Get(ctx, ks, "k"); got <- v }()
	testutil.WaitFor(t, 0, func() bool { return ds.InFlight() == 1 }, "load in flight")
	require.NoError(t, e.Put(ctx, ks, engine.Entry{Key: "k", Value: []byte("new")}))
	// A Get after the Put sees the Put, not the in-flight load.
	v, err := e.Get(ctx, ks, "k")
	require.NoError(t, err)
	require.Equal(t, "new", string(v))
	release()
	// The early caller began before the Put: either value would be
	// linearizable, and it gets the Put's, because a superseded load may
	// have read a database value newer than the store's (see runLoad).
	require.Equal(t, "new", string(<-got), "the early caller gets what the store holds")
	v, err = e.Get(ctx, ks, "k")
	require.NoError(t, err)
	require.Equal(t, "new", string(v), "the late load did not overwrite the Put")
}

// A load that a Delete superseded answers its callers with the key's next
// load, not with its own fetch. That fetch may run late and read a database
// value newer than the one the next load read (writers update the database
// before the cache); a caller handed it, followed by a Get that joins the
// next load, would see the key go back in time (found by
// TestLinearizableWrites).
func TestSupersededLoadAnswersWithNextLoad(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		db      = "v1"
		started atomic.Int32
		ended   atomic.Int32
		// The first fetch waits before it reads the database, the second
		// after it has read it.
		beforeRead = make(chan struct{})
		afterRead  = make(chan struct{})
	)
	ds := keyspace.DataSourceFunc(func(ctx context.Context, _ string) ([]byte, error) {
		defer ended.Add(1)
		n := started.Add(1)
		if n == 1 {
			<-beforeRead
		}
		mu.Lock()
		v := db
		mu.Unlock()
		if n == 2 {
			<-afterRead
		}
		return []byte(v), nil
	})
	e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 64<<20, ds)})
	ctx := context.Background()
	require.NoError(t, e.Start(ctx))
	get := func() <-chan string {
		out := make(chan string, 1)
		go func() {
			v, err := e.Get(ctx, ks, "k")
			if err != nil {
				v = []byte(err.Error())
			}
			out <- string(v)
		}()
		return out
	}
	early := get()
	testutil.WaitFor(t, 0, func() bool { return started.Load() == 1 }, "first load in flight")
	require.NoError(t, e.Delete(ctx, ks, "k")) // supersedes it
	next := get()
	testutil.WaitFor(t, 0, func() bool { return started.Load() == 2 }, "next load read v1")
	mu.Lock()
	db = "v2" // a write has updated the database, not yet the cache
	mu.Unlock()
	close(beforeRead)
	testutil.WaitFor(t, 0, func() bool { return ended.Load() == 1 }, "first fetch read v2 and returned")
	close(afterRead)
	require.Equal(t, "v1", <-next)
	require.Equal(t, "v1", <-early, "the superseded load answers with the next load's value")
	require.EqualValues(t, 2, started.Load(), "no fetch of its own")
}

// After Delete returns, Get never returns the deleted value, even when a
// load was in flight during the Delete.
func TestDeleteSupersedesInFlightLoad(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ctx := context.Background()
	ds.SetValue("k", []byte("old"))
	release := ds.Hold()
	go func() { _, _ = e.Get(ctx, ks, "k") }()
	testutil.WaitFor(t, 0, func() bool { return ds.InFlight() == 1 }, "load in flight")
	require.NoError(t, e.Delete(ctx, ks, "k"))
	ds.SetValue("k", []byte("new"))
	release()
	testutil.WaitFor(t, 0, func() bool { return ds.InFlight() == 0 }, "load done")
	v, err := e.Get(ctx, ks, "k")
	require.NoError(t, err)
	require.Equal(t, "new", string(v))
}

func TestTTL(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const ttl = 40 * time.Millisecond
		ttlDS, dflt, none := testutil.NewDataSource(), testutil.NewDataSource(), testutil.NewDataSource()
		ttlKS := &expiringKS{KeySpace: keyspace.New("ttl", 1<<20, ttlDS), ttl: ttl}
		e := newEngine(t, []keyspace.KeySpace{ttlKS, keyspace.New("dflt", 1<<20, dflt), keyspace.New("none", 1<<20, none)},
			engine.WithKeySpaceDefaultTTL("dflt", ttl), engine.WithKeySpaceDefaultTTL("ttl", time.Hour))
		require.NoError(t, e.Start(context.Background()))
		ctx := context.Background()

		// Entry.Expiry wins.
		require.NoError(t, e.Put(ctx, "none", engine.Entry{Key: "e", Value: []byte("v"), Expiry: time.Now().Add(ttl)}))
		// KeySpace.ExpiresAt wins over the default TTL.
		_, err := e.Get(ctx, "ttl", "k")
		require.NoError(t, err)
		// The default TTL applies when ExpiresAt is zero.
		_, err = e.Get(ctx, "dflt", "k")
		require.NoError(t, err)

		getAll := func() {
			t.Helper()
			for _, k := range []string{"none/e", "ttl/k", "dflt/k"} {
				ksName, key, _ := strings.Cut(k, "/")
				_, err := e.Get(ctx, ksName, key)
				require.NoError(t, err)
			}
		}
		time.Sleep(ttl - time.Millisecond)
		getAll()
		require.Equal(t, []int{0, 1, 1}, []int{none.Fetches("e"), ttlDS.Fetches("k"), dflt.Fetches("k")}, "all still fresh")
		time.Sleep(time.Millisecond)
		getAll()
		require.Equal(t, []int{1, 2, 2}, []int{none.Fetches("e"), ttlDS.Fetches("k"), dflt.Fetches("k")}, "all expired at the same moment")
	})
}

type expiringKS struct {
	keyspace.KeySpace
	ttl time.Duration
}

func (k *expiringKS) ExpiresAt(context.Context, string) time.Time { return time.Now().Add(k.ttl) }

func TestGetMany(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ds.SetMissing("missing", true)
	ds.SetError("broken", errors.New("disk on fire"))
	got, err := e.GetMany(context.Background(), ks, []string{"a", "b", "missing", "broken", "a"})
	require.Equal(t, map[string][]byte{"a": testutil.ValueOf("a"), "b": testutil.ValueOf("b")}, got)
	var ke *engine.KeyError
	require.ErrorAs(t, err, &ke)
	require.Equal(t, "broken", ke.Key)
	require.ErrorContains(t, err, "disk on fire")
	require.NotErrorIs(t, err, keyspace.ErrNotFound)
}

func TestPutManyDeleteMany(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	ctx := context.Background()
	var entries []engine.Entry
	var keys []string
	for i := range 50 {
		k := fmt.Sprint("k", i)
		keys = append(keys, k)
		entries = append(entries, engine.Entry{Key: k, Value: []byte("put-" + k)})
	}
	require.NoError(t, e.PutMany(ctx, ks, entries))
	got, err := e.GetMany(ctx, ks, keys)
	require.NoError(t, err)
	require.Len(t, got, 50)
	require.Equal(t, "put-k7", string(got["k7"]))
	require.NoError(t, e.DeleteMany(ctx, ks, keys))
	got, err = e.GetMany(ctx, ks, keys)
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("k7"), got["k7"])
	require.EqualValues(t, 50, ds.Total())
}

func TestKeySpaceAdmin(t *testing.T) {
	t.Parallel()
	a, b := testutil.NewDataSource(), testutil.NewDataSource()
	e := newEngine(t, []keyspace.KeySpace{keyspace.New("a", 1<<20, a), keyspace.New("b", 1<<20, b)})
	require.NoError(t, e.Start(context.Background()))
	ctx := context.Background()
	require.Equal(t, []string{"a", "b"}, e.KeySpaces())

	_, err := e.Get(ctx, "a", "k")
	require.NoError(t, err)
	b2 := testutil.NewDataSource()
	b2.SetValue("k", []byte("from-b2"))
	require.NoError(t, e.UpdateKeySpace(ctx, keyspace.New("b", 1<<20, b2)))
	v, err := e.Get(ctx, "b", "k")
	require.NoError(t, err)
	require.Equal(t, "from-b2", string(v))
	require.ErrorIs(t, e.UpdateKeySpace(ctx, keyspace.New("c", 1<<20, b2)), engine.ErrKeySpaceNotFound)
	require.ErrorIs(t, e.UpdateKeySpace(ctx, keyspace.New("b", 0, b2)), engine.ErrInvalidConfig)
	require.ErrorIs(t, e.UpdateKeySpace(ctx, nil), engine.ErrInvalidConfig)

	require.NoError(t, e.DeleteKeySpace(ctx, "a"))
	require.Equal(t, []string{"b"}, e.KeySpaces())
	_, err = e.Get(ctx, "a", "k")
	require.ErrorIs(t, err, engine.ErrKeySpaceNotFound)
	require.ErrorIs(t, e.DeleteKeySpace(ctx, "a"), engine.ErrKeySpaceNotFound)
	require.ErrorIs(t, e.DeleteKeySpaces(ctx, []string{"b", "zzz"}), engine.ErrKeySpaceNotFound)
	require.Empty(t, e.KeySpaces())
}

// Keyspace changes under concurrent Gets: no panic, no error other than
// ErrKeySpaceNotFound once deleted (race detector on in CI).
func TestKeySpaceChangesUnderLoad(t *testing.T) {
	t.Parallel()
	ds := testutil.NewDataSource()
	e := newEngine(t, []keyspace.KeySpace{keyspace.New("a", 1<<20, ds), keyspace.New("b", 1<<20, ds)})
	require.NoError(t, e.Start(context.Background()))
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var unexpected atomic.Value
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, name := range []string{"a", "b"} {
					_, err := e.Get(ctx, name, fmt.Sprint(g, "-", i%50))
					if err != nil && !errors.Is(err, engine.ErrKeySpaceNotFound) {
						unexpected.Store(err)
					}
					_ = e.Put(ctx, name, engine.Entry{Key: fmt.Sprint("p", i%10), Value: []byte("v")})
				}
			}
		})
	}
	for range 20 {
		require.NoError(t, e.UpdateKeySpace(ctx, keyspace.New("a", 1<<20, ds)))
	}
	require.NoError(t, e.DeleteKeySpace(ctx, "b"))
	for range 20 {
		require.NoError(t, e.UpdateKeySpace(ctx, keyspace.New("a", 2<<20, ds)))
	}
	close(stop)
	wg.Wait()
	if err, _ := unexpected.Load().(error); err != nil {
		require.NoError(t, err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ds := testutil.NewDataSource()
	e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)})
	ctx := context.Background()
	_, err := e.Get(ctx, ks, "k")
	require.ErrorIs(t, err, engine.ErrEngineNotStarted)
	require.ErrorIs(t, e.Put(ctx, ks, engine.Entry{Key: "k"}), engine.ErrEngineNotStarted)
	require.Empty(t, e.Addr())

	require.NoError(t, e.Start(ctx))
	require.NotEmpty(t, e.Addr())
	require.ErrorIs(t, e.Start(ctx), engine.ErrEngineStarted)

	require.NoError(t, e.Stop(ctx))
	require.NoError(t, e.Stop(ctx), "Stop is idempotent")
	_, err = e.Get(ctx, ks, "k")
	require.ErrorIs(t, err, engine.ErrEngineStopped)
	_, err = e.GetMany(ctx, ks, []string{"k"})
	require.ErrorIs(t, err, engine.ErrEngineStopped)
	require.ErrorIs(t, e.Put(ctx, ks, engine.Entry{Key: "k"}), engine.ErrEngineStopped)
	require.ErrorIs(t, e.PutMany(ctx, ks, nil), engine.ErrEngineStopped)
	require.ErrorIs(t, e.Delete(ctx, ks, "k"), engine.ErrEngineStopped)
	require.ErrorIs(t, e.DeleteMany(ctx, ks, nil), engine.ErrEngineStopped)
	require.ErrorIs(t, e.DeleteKeySpace(ctx, ks), engine.ErrEngineStopped)
	require.ErrorIs(t, e.UpdateKeySpace(ctx, keyspace.New(ks, 1, ds)), engine.ErrEngineStopped)
	require.ErrorIs(t, e.Start(ctx), engine.ErrEngineStopped)
	require.NotPanics(t, func() { e.Stats(); e.KeySpaces() })
}

// Stop while Gets and loads are in flight: no panic, no leak, callers get
// a value or ErrEngineStopped/context errors.
func TestStopDuringLoad(t *testing.T) {
	t.Parallel()
	e, ds := startSingle(t)
	release := ds.Hold()
	defer release()
	errc := make(chan error, 1)
	go func() { _, err := e.Get(context.Background(), ks, "k"); errc <- err }()
	testutil.WaitFor(t, 0, func() bool { return ds.InFlight() == 1 }, "load started")
	require.NoError(t, e.Stop(context.Background()))
	require.Error(t, <-errc)
}

func TestConfigValidation(t *testing.T) {
	ds := testutil.NewDataSource()
	good := []keyspace.KeySpace{keyspace.New("a", 1<<20, ds)}
	for _, tc := range []struct {
		name string
		kss  []keyspace.KeySpace
		opts []engine.Option
		want []string
	}{
		{"no keyspaces", nil, nil, []string{"KeySpaces is empty"}},
		{"duplicate", []keyspace.KeySpace{good[0], good[0]}, nil, []string{`keyspace "a": duplicate`}},
		{"empty name", []keyspace.KeySpace{keyspace.New("", 1, ds)}, nil, []string{"name is empty"}},
		{"nil datasource", []keyspace.KeySpace{keyspace.New("x", 1, nil)}, nil, []string{"DataSource is nil"}},
		{"zero max bytes", []keyspace.KeySpace{keyspace.New("x", 0, ds)}, nil, []string{`keyspace "x": MaxBytes`}},
		{"override max bytes", good, []engine.Option{engine.WithKeySpaceMaxBytes("a", -1)}, []string{`keyspace "a": MaxBytes`}},
		{"negative ttl", good, []engine.Option{engine.WithKeySpaceDefaultTTL("a", -time.Second)}, []string{`keyspace "a": DefaultTTL`}},
		{"read timeout", good, []engine.Option{engine.WithKeySpaceReadTimeout("a", 0)}, []string{`keyspace "a": ReadTimeout`}},
		{"write timeout", good, []engine.Option{engine.WithWriteTimeout(-1)}, []string{"WriteTimeout"}},
		{"unknown override", good, []engine.Option{engine.WithKeySpaceDefaultTTL("zz", time.Second)}, []string{`keyspace "zz": overrides`}},
		{"rate", good, []engine.Option{engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 0, Burst: 1})}, []string{"RateLimit: RequestsPerSecond"}},
		{"ks breaker", good, []engine.Option{engine.WithKeySpaceCircuitBreaker("a", engine.CircuitBreakerConfig{FailureThreshold: 0, ResetTimeout: time.Second})}, []string{`keyspace "a": CircuitBreaker: FailureThreshold`}},
		{"secret", good, []engine.Option{engine.WithGossipSecret([]byte("short"))}, []string{"GossipSecret"}},
		{"quorum", good, []engine.Option{engine.WithMinimumPeersQuorum(0)}, []string{"MinimumPeersQuorum"}},
		{"port", good, []engine.Option{engine.WithBindPort(70000)}, []string{"BindPort"}},
		{"several at once", good, []engine.Option{engine.WithReadTimeout(0), engine.WithBootstrapTimeout(0)}, []string{"ReadTimeout", "BootstrapTimeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), tc.kss, tc.opts...))
			require.ErrorIs(t, err, engine.ErrInvalidConfig)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	_, err := engine.New(nil)
	require.ErrorIs(t, err, engine.ErrInvalidConfig)
	_, err = engine.New(engine.NewConfig(nil, good))
	require.ErrorContains(t, err, "Provider is nil")
}

func TestGetAppend(t *testing.T) {
	e, ds := startSingle(t)
	ctx := context.Background()
	buf := []byte("prefix:")
	out, err := e.GetAppend(ctx, ks, "k", buf)
	require.NoError(t, err)
	require.Equal(t, "prefix:"+string(testutil.ValueOf("k")), string(out))
	// A hit appends into the caller's buffer without touching the cache.
	out2, err := e.GetAppend(ctx, ks, "k", out[:0])
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("k"), out2)
	out2[0] = 'X'
	v, err := e.Get(ctx, ks, "k")
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("k"), v)
	require.Equal(t, 1, ds.Fetches("k"))
	ds.SetMissing("gone", true)
	got, err := e.GetAppend(ctx, ks, "gone", buf)
	require.ErrorIs(t, err, keyspace.ErrNotFound)
	require.Equal(t, "prefix:", string(got), "dst unchanged on error")
	allocs := testing.AllocsPerRun(100, func() { out, _ = e.GetAppend(ctx, ks, "k", out[:0]) })
	require.Zero(t, allocs, "a local hit into a reused buffer allocates nothing")
}
