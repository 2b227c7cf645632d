package raw

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Every goroutine a baseline starts (echo server, pipeline reader and
// writer, ristretto's) has exited when it returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTCPPipelineAndPingPong(t *testing.T) {
	ctx := context.Background()
	m, err := TCPPipeline(ctx, 64, 100, 50*time.Millisecond)
	require.NoError(t, err)
	require.Positive(t, m.Ops)
	require.Equal(t, uint64(m.Ops), m.Latency.Count())
	require.Positive(t, m.Latency.Quantile(0.5))

	m, err = TCPPingPong(ctx, 100, 50*time.Millisecond)
	require.NoError(t, err)
	require.Positive(t, m.Ops)
	require.Equal(t, uint64(m.Ops), m.Latency.Count())
}

func TestRistrettoHoldsEveryKey(t *testing.T) {
	keys := []string{"a", "b", "c", "d"}
	c, err := NewRistretto(keys, 100)
	require.NoError(t, err)
	defer c.Close()
	for _, k := range keys {
		v, ok := c.Get(k)
		require.True(t, ok, k)
		require.Len(t, v, 100)
	}
	m := RistrettoGet(context.Background(), c, keys, Zipf(len(keys)), 4, 20*time.Millisecond)
	require.Positive(t, m.Ops)
	m = RistrettoGet(context.Background(), c, keys, Uniform(len(keys)), 4, 20*time.Millisecond)
	require.Positive(t, m.Ops)
}
