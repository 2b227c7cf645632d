package ctlapi

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestValueRoundTrip: a value decodes to its version for its own key only.
func TestValueRoundTrip(t *testing.T) {
	v, err := ParseValue("key-0042", Value("key-0042", 17))
	require.NoError(t, err)
	require.EqualValues(t, 17, v)

	v, err = ParseValue("key-0042", Value("key-0042", 0))
	require.NoError(t, err)
	require.Zero(t, v)

	_, err = ParseValue("key-0042", Value("key-0043", 3))
	require.ErrorContains(t, err, `names key "key-0043"`)
	for _, bad := range []string{"", "garbage", "k=key-0042;v=x", "key-0042;v=1"} {
		_, err = ParseValue("key-0042", []byte(bad))
		require.Error(t, err, bad)
	}
}

// TestReadyLine: the driver finds both addresses in the node's ready line
// and ignores any other line.
func TestReadyLine(t *testing.T) {
	g, c, ok := ParseReady(ReadyLine("127.0.0.1:7946", "127.0.0.1:8080") + "\n")
	require.True(t, ok)
	require.Equal(t, "127.0.0.1:7946", g)
	require.Equal(t, "127.0.0.1:8080", c)
	for _, line := range []string{"", "level=INFO msg=started", "CHAOSNODE READY gossip=1.2.3.4:5"} {
		_, _, ok = ParseReady(line)
		require.False(t, ok, line)
	}
}
