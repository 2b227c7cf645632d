package stall

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNoStallWhenScheduled: ticks that arrive on time record no stall, and
// Run returns when its context ends.
func TestNoStallWhenScheduled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := New(5*time.Millisecond, 100*time.Millisecond, 4)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { d.Run(ctx) })
		time.Sleep(time.Second) // fake time: 200 ticks, each on time
		cancel()
		wg.Wait()
		require.Empty(t, d.Stalls())
	})
}
