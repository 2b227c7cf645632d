package main

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/chaos/check"
	"github.com/distcache/distcache/chaos/internal/stall"
)

// monitorEvery is how often the monitor reads every node's status.
const monitorEvery = 250 * time.Millisecond

// monitor polls every serving node's status: it attributes DataSource
// fetches to the phase they happened in (per process, so a restart's
// counters starting again at zero are not lost) and detects when every
// node serves again after the fault.
type monitor struct {
	c *cluster

	sampleMu sync.Mutex // serializes samples; guards the fields below
	phase    check.Phase
	fetches  [check.NumPhases]int64
	degraded [check.NumPhases]int64
	seen     []counters // last counters read per node
	// watchFrom is when recovery started to be watched (the fault's end),
	// recovered when every node served again, as an offset from it; -1
	// until then.
	watching  bool
	watchFrom time.Duration
	recovered time.Duration
	// stalls are the nodes' stalls seen so far, by node and start.
	stalls map[nodeStall]stall.Interval
}

type nodeStall struct {
	node int
	from int64
}

type counters struct {
	gen               int64
	fetches, degraded int64
}

func newMonitor(c *cluster) *monitor {
	return &monitor{c: c, seen: make([]counters, len(c.nodes)), recovered: -1, stalls: map[nodeStall]stall.Interval{}}
}

// run samples until ctx ends.
func (m *monitor) run(ctx context.Context) {
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sample(ctx)
		}
	}
}

// setPhase samples (so fetches up to now count for the phase that ends)
// and switches phase. With watch, recovery is watched from now on.
func (m *monitor) setPhase(ctx context.Context, p check.Phase, watch bool) {
	m.sample(ctx)
	m.sampleMu.Lock()
	defer m.sampleMu.Unlock()
	m.phase = p
	if watch {
		m.watching, m.watchFrom = true, m.c.now()
	}
}

// phaseFetches samples and returns the fetches counted so far in phase p.
func (m *monitor) phaseFetches(ctx context.Context, p check.Phase) int64 {
	m.sample(ctx)
	m.sampleMu.Lock()
	defer m.sampleMu.Unlock()
	return m.fetches[p]
}

// restart samples, then forgets the fetches and degraded loads counted so
// far (the warm-up's): the phases count from now.
func (m *monitor) restart(ctx context.Context) {
	m.sample(ctx)
	m.sampleMu.Lock()
	defer m.sampleMu.Unlock()
	m.fetches, m.degraded = [check.NumPhases]int64{}, [check.NumPhases]int64{}
}

// sample reads every serving node's status, adds the fetches since the
// previous sample to the current phase, and checks for recovery.
func (m *monitor) sample(ctx context.Context) {
	m.sampleMu.Lock()
	defer m.sampleMu.Unlock()
	sts, _ := m.c.statuses(ctx)
	for i, st := range sts {
		if st == nil {
			continue
		}
		gen := m.c.nodes[i].gen.Load()
		last := &m.seen[i]
		if last.gen != gen {
			*last = counters{gen: gen}
		}
		m.fetches[m.phase] += st.Fetches - last.fetches
		m.degraded[m.phase] += st.Degraded - last.degraded
		last.fetches, last.degraded = st.Fetches, st.Degraded
		for _, s := range st.Stalls {
			m.stalls[nodeStall{i, s.From}] = s
		}
	}
	if m.watching && m.recovered < 0 {
		if ok, _ := m.c.serving(ctx, sts); ok {
			m.recovered = m.c.now() - m.watchFrom
		}
	}
}

// recoveredAfter returns the recovery time (-1: not yet).
func (m *monitor) recoveredAfter() time.Duration {
	m.sampleMu.Lock()
	defer m.sampleMu.Unlock()
	return m.recovered
}

// hostStalls returns the nodes' stalls (except those within the node's
// own outage: a SIGSTOP is the fault, not the host) and the driver's, as
// offsets from the epoch.
func (m *monitor) hostStalls(driver []stall.Interval, outages []check.Outage) []check.Stall {
	m.sampleMu.Lock()
	defer m.sampleMu.Unlock()
	epoch := m.c.epoch.UnixNano()
	off := func(s stall.Interval) check.Stall {
		return check.Stall{From: time.Duration(s.From - epoch), To: time.Duration(s.To - epoch)}
	}
	var out []check.Stall
	for _, s := range driver {
		out = append(out, off(s))
	}
next:
	for k, s := range m.stalls {
		cs := off(s)
		for _, o := range outages {
			if o.Node == k.node && cs.From < o.To && cs.To > o.From {
				continue next
			}
		}
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b check.Stall) int { return cmp.Compare(a.From, b.From) })
	return out
}

func (m *monitor) totals() (fetches, degraded [check.NumPhases]int64) {
	m.sampleMu.Lock()
	defer m.sampleMu.Unlock()
	return m.fetches, m.degraded
}
