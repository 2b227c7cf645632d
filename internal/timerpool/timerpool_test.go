package timerpool

import (
	"testing"
	"time"
)

// A reused timer fires after its new duration and never delivers the
// value of an earlier use.
func TestReuse(t *testing.T) {
	var p Pool
	tm := p.Get(time.Millisecond)
	<-tm.C
	p.Put(tm)
	tm = p.Get(time.Hour)
	select {
	case <-tm.C:
		t.Fatal("stale value from an earlier use")
	case <-time.After(20 * time.Millisecond):
	}
	p.Put(tm)
	tm = p.Get(time.Millisecond)
	select {
	case <-tm.C:
	case <-time.After(5 * time.Second):
		t.Fatal("reset timer never fired")
	}
	p.Put(tm)
}
