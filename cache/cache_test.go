package cache_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distcache/distcache/cache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The public Store passes values, expiries and counters through, and reads
// back what it was given at once.
func TestStore(t *testing.T) {
	s, err := cache.New(cache.Config{MaxBytes: 1 << 20, RetainExpired: time.Hour})
	require.NoError(t, err)
	defer s.Close()

	exp := time.Now().Add(time.Hour)
	require.NoError(t, s.Set("a", cache.Entry{Value: []byte("1"), ExpiresAt: exp}))
	e, ok := s.Get("a")
	require.True(t, ok)
	require.Equal(t, "1", string(e.Value))
	require.True(t, e.ExpiresAt.Equal(exp))
	require.True(t, e.Fresh())

	require.NoError(t, s.Set("old", cache.Entry{Value: []byte("2"), ExpiresAt: time.Now().Add(-time.Minute)}))
	e, ok = s.Get("old")
	require.True(t, ok, "kept for RetainExpired")
	require.False(t, e.Fresh())

	s.Delete("a")
	_, ok = s.Get("a")
	require.False(t, ok)

	st := s.Stats()
	require.Equal(t, int64(2), st.Sets)
	require.Equal(t, int64(2), st.Hits)
	require.Equal(t, int64(1), st.Misses)
	require.Equal(t, int64(1), st.Deletes)
	require.Equal(t, int64(1), st.Entries)
	require.Equal(t, int64(1<<20), st.MaxBytes)

	s.Close()
	require.ErrorIs(t, s.Set("b", cache.Entry{}), cache.ErrClosed)
}

func TestConfigValidate(t *testing.T) {
	require.Error(t, cache.Config{}.Validate())
	require.Error(t, cache.Config{MaxBytes: 1, RetainExpired: -1}.Validate())
	require.NoError(t, cache.Config{MaxBytes: 1}.Validate())
	_, err := cache.New(cache.Config{})
	require.Error(t, err)
}
