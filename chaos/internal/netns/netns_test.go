package netns

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNamesParse: cleanup finds a driver's namespaces and links by pid,
// never another driver's whose pid shares a prefix.
func TestNamesParse(t *testing.T) {
	n := &Net{pid: 123}
	pid, ok := ownerPid(n.NS(4))
	require.True(t, ok)
	require.Equal(t, 123, pid)
	_, ok = ownerPid("other-ns")
	require.False(t, ok)

	for _, tc := range []struct {
		name string
		pid  int
		role string
		ok   bool
	}{
		{n.link("m"), 123, "m", true},
		{n.link("d4"), 123, "d4", true},
		{n.link("c0"), 123, "c0", true},
		{"dcc1234c0", 1234, "c0", true},
		{"dccx", 0, "", false},
		{"eth0", 0, "", false},
		{"dcc123", 0, "", false},
		{"dcc123z", 0, "", false},
	} {
		pid, role, ok := linkOwner(tc.name)
		require.Equal(t, tc.ok, ok, tc.name)
		if ok {
			require.Equal(t, tc.pid, pid, tc.name)
			require.Equal(t, tc.role, role, tc.name)
		}
	}
}
