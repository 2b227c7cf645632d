package cache

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero budget", Config{}, "MaxBytes"},
		{"negative counters", Config{MaxBytes: 1, NumCounters: -1}, "NumCounters"},
		{"negative retain", Config{MaxBytes: 1, RetainExpired: -time.Second}, "RetainExpired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// An acknowledged Set is visible to the very next Get, from many goroutines at
// once: ristretto alone misses almost all of these (admission is async and
// drops Sets under contention).
func TestSetVisibleUnderConcurrency(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 64 << 20})
	const workers, perWorker = 32, 300
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := fmt.Sprintf("w%d-k%d", w, i)
				if err := s.Set(k, Entry{Value: []byte(k)}); err != nil {
					errs <- err
					return
				}
				e, ok := s.Get(k)
				if !ok || string(e.Value) != k {
					errs <- fmt.Errorf("key %s not visible after Set", k)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Nothing was lost while under budget.
	for w := range workers {
		for i := range perWorker {
			_, ok := s.Get(fmt.Sprintf("w%d-k%d", w, i))
			require.True(t, ok)
		}
	}
	require.EqualValues(t, workers*perWorker, s.Stats().Entries)
	require.Zero(t, s.Stats().Rejected)
}

// Concurrent writers of one key: the last acknowledged Set wins and nothing
// older resurfaces.
func TestSetLastWriterWins(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1 << 20})
	for i := range 200 {
		k := fmt.Sprintf("k%d", i)
		var wg sync.WaitGroup
		for v := range 4 {
			wg.Go(func() { require.NoError(t, s.Set(k, Entry{Value: []byte{byte(v)}})) })
		}
		wg.Wait()
		require.NoError(t, s.Set(k, Entry{Value: []byte("final")}))
		e, ok := s.Get(k)
		require.True(t, ok)
		require.Equal(t, "final", string(e.Value))
	}
}

// Versions grow with every write and come back with the entry.
func TestVersions(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1 << 20})
	v0 := s.Version()
	require.NoError(t, s.Set("a", Entry{Value: []byte("1")}))
	_, va, ok := s.PeekVersion("a")
	require.True(t, ok)
	require.Greater(t, va, v0)
	require.Equal(t, va, s.Version())
	require.NoError(t, s.Set("a", Entry{Value: []byte("2")}))
	e, va2, ok := s.PeekVersion("a")
	require.True(t, ok)
	require.Greater(t, va2, va)
	require.Equal(t, "2", string(e.Value))
	_, _, ok = s.PeekVersion("missing")
	require.False(t, ok)
}

// SetAsync: the entry shows up once ristretto has applied it, and a Delete
// issued after SetAsync returns is applied after it, so the entry never
// comes back.
func TestSetAsync(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1 << 20})
	s.SetAsync("k", Entry{Value: []byte("v")})
	s.c.Wait()
	e, ok := s.Get("k")
	require.True(t, ok)
	require.Equal(t, "v", string(e.Value))
	for i := range 500 {
		k := fmt.Sprintf("gone-%d", i)
		s.SetAsync(k, Entry{Value: []byte("x")})
		s.Delete(k)
	}
	s.c.Wait()
	for i := range 500 {
		_, ok := s.Get(fmt.Sprintf("gone-%d", i))
		require.False(t, ok, "gone-%d came back", i)
	}
	s.SetAsync("expired", Entry{Value: []byte("x"), ExpiresAt: time.Now().Add(-time.Second)})
	s.c.Wait()
	_, ok = s.Get("expired")
	require.False(t, ok)
}

func TestRejectsEntryLargerThanBudget(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1024})
	require.ErrorIs(t, s.Set("big", Entry{Value: make([]byte, 4096)}), ErrRejected)
	_, ok := s.Get("big")
	require.False(t, ok)
	require.EqualValues(t, 1, s.Stats().Rejected)
}

func TestBudgetEnforced(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 64 << 10})
	for i := range 2000 {
		_ = s.Set(fmt.Sprintf("k%04d", i), Entry{Value: make([]byte, 100)})
	}
	st := s.Stats()
	require.LessOrEqual(t, st.UsedBytes, st.MaxBytes)
	require.Less(t, st.Entries, int64(2000))
}

func TestExpiryAndRetention(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1 << 20, RetainExpired: time.Hour})
	past := time.Now().Add(-time.Second)
	require.NoError(t, s.Set("stale", Entry{Value: []byte("v"), ExpiresAt: past}))
	e, ok := s.Get("stale")
	require.True(t, ok, "kept for RetainExpired past expiry")
	require.False(t, e.Fresh())

	s2 := newStore(t, Config{MaxBytes: 1 << 20})
	require.NoError(t, s2.Set("gone", Entry{Value: []byte("v"), ExpiresAt: past}))
	_, ok = s2.Get("gone")
	require.False(t, ok, "past its retention window: not stored")

	require.NoError(t, s2.Set("soon", Entry{Value: []byte("v"), ExpiresAt: time.Now().Add(50 * time.Millisecond)}))
	require.Eventually(t, func() bool { _, ok := s2.Get("soon"); return !ok }, 2*time.Second, 5*time.Millisecond)
}

func TestNegativeEntryAndDelete(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1 << 20})
	require.NoError(t, s.Set("missing", Entry{Negative: true}))
	e, ok := s.Get("missing")
	require.True(t, ok)
	require.True(t, e.Negative)
	s.Delete("missing")
	_, ok = s.Get("missing")
	require.False(t, ok)
}

func TestRange(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1 << 20})
	for i := range 10 {
		require.NoError(t, s.Set(fmt.Sprint(i), Entry{Value: []byte{byte(i)}}))
	}
	seen := map[string]bool{}
	s.Range(func(k string, e Entry) bool { seen[k] = true; return true })
	require.Len(t, seen, 10)
	n := 0
	s.Range(func(string, Entry) bool { n++; return n < 3 })
	require.Equal(t, 3, n)
}

// Close while other goroutines use the store: no panic (ristretto alone
// panics on a send to its closed buffers), and calls after Close are no-ops.
func TestCloseConcurrentWithUse(t *testing.T) {
	s, err := New(Config{MaxBytes: 1 << 20})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := fmt.Sprintf("%d-%d", g, i)
				_ = s.Set(k, Entry{Value: []byte("v")})
				s.Get(k)
				s.Delete(k)
			}
		})
	}
	s.Close()
	wg.Wait()
	s.Close()
	require.ErrorIs(t, s.Set("k", Entry{}), ErrClosed)
	_, ok := s.Get("k")
	require.False(t, ok)
	s.Delete("k")
	s.Range(func(string, Entry) bool { t.Fatal("closed store has entries"); return false })
	require.Zero(t, s.Stats().Entries)
}

// After Deletes and one Settle, no earlier SetAsync of the keys shows them
// again, not even before the store's buffers are drained (with Delete
// alone, a queued set is applied after the immediate removal and the key is
// visible until the delete queued behind it runs).
func TestDeleteThenSettle(t *testing.T) {
	s := newStore(t, Config{MaxBytes: 1 << 20})
	for i := range 100 {
		keys := make([]string, 5)
		for j := range keys {
			keys[j] = fmt.Sprintf("k-%d-%d", i, j)
			s.SetAsync(keys[j], Entry{Value: []byte("x")})
		}
		for _, k := range keys {
			s.Delete(k)
		}
		s.Settle()
		for _, k := range keys {
			_, ok := s.Peek(k)
			require.False(t, ok, "%s visible after Delete and Settle", k)
		}
	}
}
