package engine

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A subscriber that never reads loses the events past its buffer, counted,
// and publish never blocks; other subscribers are not affected; close
// closes every channel once.
func TestEventHubSlowSubscriber(t *testing.T) {
	var e Engine
	slow, fast := e.Events(), e.Events()
	got := 0
	for i := range eventBuffer + 10 {
		e.events.publish(Event{Type: RingChanged, Members: i})
		<-fast
		got++
	}
	require.Equal(t, eventBuffer+10, got)
	require.EqualValues(t, 10, e.events.dropped.Load())
	require.Len(t, slow, eventBuffer)
	e.events.close()
	e.events.close()
	n := 0
	for range slow {
		n++
	}
	require.Equal(t, eventBuffer, n)
	_, ok := <-e.Events()
	require.False(t, ok)
}
