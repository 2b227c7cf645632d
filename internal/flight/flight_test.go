package flight

import (
	"errors"
	"strconv"
	"sync"
	"testing"
)

// store is a stand-in for the engine's store: a map whose writes happen
// under the key's flight lock, as the engine's do.
type store struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *store) set(k, v string) { s.mu.Lock(); s.m[k] = v; s.mu.Unlock() }
func (s *store) get(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

// finishLoad is the load side as the engine writes it: store the result only
// if no write superseded the flight.
func finishLoad(t *Table, st *store, key string, f *Flight, val string) {
	l := t.Lock(key)
	if l.Finish(f) && !l.Superseded(f) {
		st.set(key, val)
	}
	l.Unlock()
	f.Publish([]byte(val), nil)
}

// write is the writer's side: supersede, then store, both under the lock.
func write(t *Table, st *store, key, val string) {
	l := t.Lock(key)
	l.Supersede()
	st.set(key, val)
	l.Unlock()
}

func TestSlowLoadNeverOverwritesNewerWrite(t *testing.T) {
	var tab Table
	st := &store{m: map[string]string{}}
	l := tab.Lock("k")
	f := l.Lead(0)
	l.Unlock()

	write(&tab, st, "k", "written")
	finishLoad(&tab, st, "k", f, "loaded-before-write")

	if got := st.get("k"); got != "written" {
		t.Fatalf("store holds %q after a load that began before the write; want the write", got)
	}
	l = tab.Lock("k")
	defer l.Unlock()
	if l.Current() != nil {
		t.Fatal("a superseded flight must leave the table")
	}
}

func TestWriteLeavesTableSoLaterCallersStartAfresh(t *testing.T) {
	var tab Table
	l := tab.Lock("k")
	old := l.Lead(1)
	l.Supersede()
	if l.Join() != nil {
		t.Fatal("Join found the superseded flight")
	}
	fresh := l.Lead(2)
	l.Unlock()
	if fresh == old || fresh.Gen() != 2 {
		t.Fatal("Lead after a write must start a new flight")
	}
	l = tab.Lock("k")
	if !l.Superseded(old) || l.Superseded(fresh) {
		t.Fatal("only the flight that was running at the write is superseded")
	}
	l.Unlock()
}

func TestUnsupersededLoadStores(t *testing.T) {
	var tab Table
	st := &store{m: map[string]string{}}
	l := tab.Lock("k")
	f := l.Lead(0)
	l.Unlock()
	finishLoad(&tab, st, "k", f, "v")
	if got := st.get("k"); got != "v" {
		t.Fatalf("store = %q, want v", got)
	}
	<-f.Done()
	if v, err := f.Result(); string(v) != "v" || err != nil {
		t.Fatalf("Result = %q, %v", v, err)
	}
}

func TestExactlyOneOfFinishAndAbandonWins(t *testing.T) {
	var tab Table
	for i := range 200 {
		key := strconv.Itoa(i)
		l := tab.Lock(key)
		f := l.Lead(0)
		l.Unlock()
		var wg sync.WaitGroup
		var finished, abandoned bool
		wg.Add(2)
		go func() {
			defer wg.Done()
			l := tab.Lock(key)
			finished = l.Finish(f)
			l.Unlock()
		}()
		go func() {
			defer wg.Done()
			l := tab.Lock(key)
			abandoned = l.Abandon(f)
			l.Unlock()
		}()
		wg.Wait()
		if finished == abandoned {
			t.Fatalf("finished=%v abandoned=%v: exactly one must win", finished, abandoned)
		}
		l = tab.Lock(key)
		if l.Current() != nil {
			t.Fatal("an ended flight must leave the table")
		}
		l.Unlock()
	}
}

func TestJoinCountsWaiters(t *testing.T) {
	var tab Table
	l := tab.Lock("k")
	f := l.Lead(0)
	for range 2 {
		if l.Join() != f {
			t.Fatal("Join must return the running flight")
		}
	}
	l.Unlock()
	if f.Waiters() != 2 {
		t.Fatalf("Waiters = %d, want 2", f.Waiters())
	}
	f.Publish(nil, errors.New("boom"))
	if _, err := f.Result(); err == nil {
		t.Fatal("Result lost the error")
	}
}

// TestConcurrentWritesAndLoads races loads against writes on few keys: after
// everything settles, each key holds the last write made to it, never a load
// result that began before it.
func TestConcurrentWritesAndLoads(t *testing.T) {
	var tab Table
	st := &store{m: map[string]string{}}
	const keys, rounds = 4, 2000
	var wg sync.WaitGroup
	for k := range keys {
		key := strconv.Itoa(k)
		wg.Add(2)
		go func() { // loader: only ever stores "loaded"
			defer wg.Done()
			for range rounds {
				l := tab.Lock(key)
				f := l.Current()
				if f == nil {
					f = l.Lead(0)
				}
				l.Unlock()
				finishLoad(&tab, st, key, f, "loaded")
			}
		}()
		go func() { // writer
			defer wg.Done()
			for i := range rounds {
				write(&tab, st, key, "w"+strconv.Itoa(i))
			}
		}()
	}
	wg.Wait()
	for k := range keys {
		key := strconv.Itoa(k)
		// Any load that began after the last write may store; one that
		// began before it may not. Start a fresh check: a load begun now
		// and then superseded by a final write must leave the write.
		l := tab.Lock(key)
		f := l.Lead(0)
		l.Unlock()
		write(&tab, st, key, "final")
		finishLoad(&tab, st, key, f, "loaded")
		if got := st.get(key); got != "final" {
			t.Fatalf("key %s = %q, want final", key, got)
		}
	}
}
