package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The owner's table returns each live holder of a key once, forgets the
// records a write takes and the leases that lapsed, and asks for a
// broadcast instead of growing past its bound or recording an unnamed peer.
func TestHolderTable(t *testing.T) {
	t.Run("take", func(t *testing.T) {
		h := newHolderTable()
		h.record("k", "a", time.Hour)
		h.record("k", "b", time.Hour)
		h.record("k", "a", time.Minute) // a shorter lease does not shorten it
		h.record("other", "c", time.Hour)
		require.EqualValues(t, 3, h.records())
		require.ElementsMatch(t, []string{"a", "b"}, holderNames(h.take("k", nil)))
		require.Empty(t, h.take("k", nil), "a write takes the records")
		require.EqualValues(t, 1, h.records())
		require.False(t, h.broadcasting())
	})
	t.Run("lapsed leases", func(t *testing.T) {
		h := newHolderTable()
		h.t0 = time.Now().Add(-time.Hour)
		h.record("k", "gone", time.Nanosecond)
		h.record("k", "live", time.Hour)
		require.Equal(t, []string{"live"}, holderNames(h.take("k", nil)))
	})
	t.Run("lease ends", func(t *testing.T) {
		h := newHolderTable()
		before := time.Now()
		h.record("k", "a", time.Minute)
		h.record("k", "a", time.Hour)
		got := h.take("k", nil)
		require.Len(t, got, 1)
		require.WithinDuration(t, before.Add(time.Hour), got[0].until, time.Second, "the longest lease")
		h.restore("k", "a", got[0].until)
		require.Equal(t, got, h.take("k", nil), "a failed write puts the record back")
		h.restore("k", "a", time.Now().Add(-time.Second))
		require.Empty(t, h.take("k", nil), "a lapsed lease is not restored")
	})
	t.Run("unnamed peer", func(t *testing.T) {
		h := newHolderTable()
		h.record("k", "", time.Hour)
		require.True(t, h.broadcasting())
		require.Zero(t, h.records())
	})
	t.Run("full", func(t *testing.T) {
		h := newHolderTable()
		h.t0 = time.Now().Add(-time.Hour) // sweeps are due at once
		for i := range maxHolderRecords {
			h.record(fmt.Sprint(i), "a", time.Hour)
		}
		require.False(t, h.broadcasting())
		h.record("one more", "a", time.Hour)
		require.True(t, h.broadcasting(), "a Get answered without a record makes writes broadcast")
		require.EqualValues(t, maxHolderRecords, h.records())
		require.Empty(t, h.take("one more", nil))
	})
	t.Run("full of lapsed leases", func(t *testing.T) {
		h := newHolderTable()
		h.t0 = time.Now().Add(-time.Hour)
		for i := range maxHolderRecords {
			h.record(fmt.Sprint(i), "a", time.Nanosecond)
		}
		h.record("one more", "a", time.Hour)
		require.False(t, h.broadcasting(), "the sweep made room")
		require.Equal(t, []string{"a"}, holderNames(h.take("one more", nil)))
		require.Less(t, h.records(), int64(maxHolderRecords))
	})
}

func holderNames(hs []heldCopy) []string {
	var names []string
	for _, h := range hs {
		names = append(names, h.node)
	}
	return names
}
