package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
	"github.com/stretchr/testify/require"
)

// Departures are listed most recent first until they come back, for
// departedShown at most, and never more than maxDeparted of them.
func TestDeparturesWindowAndCap(t *testing.T) {
	m := func(name string) cluster.Member { return cluster.Member{Name: name, Addr: name + ":1"} }
	ring, err := membership.NewRing([]cluster.Member{m("a")}, membership.RingConfig{})
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var d departures
	d.note([]memberChange{{MemberLeft, m("b")}}, t0)
	d.note([]memberChange{{MemberFailed, m("c")}, {MemberJoined, m("x")}}, t0.Add(time.Second))
	got := d.list(ring, t0.Add(2*time.Second))
	require.Len(t, got, 2)
	require.Equal(t, "c", got[0].Name, "most recent first")
	require.Equal(t, "c:1", got[0].Addr)
	require.False(t, got[0].Reachable)
	require.Contains(t, got[0].Error, "failed")
	require.Contains(t, got[1].Error, "left the cluster")
	require.NotNil(t, got[1].KeySpaces)

	back, err := membership.NewRing([]cluster.Member{m("a"), m("c")}, membership.RingConfig{})
	require.NoError(t, err)
	require.Len(t, d.list(back, t0.Add(2*time.Second)), 1, "a member back in the ring is not listed")
	d.note([]memberChange{{MemberJoined, m("b")}}, t0.Add(3*time.Second))
	require.Len(t, d.list(ring, t0.Add(3*time.Second)), 1, "a member that joined again is forgotten")
	require.Empty(t, d.list(ring, t0.Add(time.Second+departedShown+time.Second)), "past the window")

	for i := range maxDeparted + 10 {
		d.note([]memberChange{{MemberFailed, m(fmt.Sprint("n", i))}}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	got = d.list(ring, t0.Add(time.Minute))
	require.Len(t, got, maxDeparted)
	require.Equal(t, fmt.Sprint("n", maxDeparted+9), got[0].Name, "the most recent are kept")
}

// A report too large for the wire drops its hot and warm keys first; one
// still too large is refused.
func TestEncodeMemberReportBounded(t *testing.T) {
	big := make([]string, 0, 64)
	for i := range 64 {
		big = append(big, fmt.Sprintf("%0*d", 100_000, i))
	}
	m := adminMemberWithWarmKeys(big)
	b, err := encodeMemberReport(m)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), maxMemberReportBytes)
	require.NotContains(t, string(b), big[0])

	var huge admin.Member
	for _, k := range big {
		huge.KeySpaces = append(huge.KeySpaces, admin.KeySpace{Name: k})
	}
	_, err = encodeMemberReport(huge)
	require.ErrorContains(t, err, "exceeds")
}

func adminMemberWithWarmKeys(keys []string) admin.Member {
	return admin.Member{Name: "a", KeySpaces: []admin.KeySpace{{Name: "ks", WarmKeys: keys}}}
}
