package membership

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/distcache/distcache/internal/transport"
)

// Admission backoff: a member whose data handshake fails is probed again after this long,
// doubling up to the maximum, for as long as memberlist reports it alive.
const (
	minAdmitBackoff = 100 * time.Millisecond
	maxAdmitBackoff = 10 * time.Second
	// admitWarnAfter is the number of failed probes after which a member that merely cannot
	// be reached yet is reported at warn level (a refused credential is reported at once).
	admitWarnAfter = 3
)

// admission keeps the ring to members this node has completed a data handshake with.
//
// memberlist admits any node that speaks gossip, and its gossip is protected by the
// secret only: under mutual TLS without a secret, or with a secret but a node lacking a
// certificate, a node that cannot exchange a single RPC would join the ring, own
// partitions, and fail every request sent to it. So a member of Members enters the ring
// only after transport.Probe to its address succeeded: it answered on the data port
// with our label and proved the secret, or presented a certificate our CA signed, and
// accepted our credentials. Every node applies the same rule to the same member set, so
// the ring stays a pure function of the verified members.
//
// Probes run on goroutines owned by the cluster, never under memberlist's lock: the ring
// rebuild that follows a membership event starts one per unverified member (filter), and
// a success pokes the rebuild. A join costs one extra dial and handshake (about a
// millisecond on a LAN; at most DialTimeout when a member does not answer) and one more
// ring debounce. A verified member stays verified while memberlist keeps it alive at the
// same address; one that leaves, dies or moves is probed again when it comes back. Until
// the ring holds every member of Members, membership has not settled (the engine's
// warmup waits for that).
type admission struct {
	c *Cluster

	// mu guards the fields below.
	mu       sync.Mutex
	admitted map[string]string      // name -> address verified
	probing  map[string]*probeState // name -> its probe loop, while unverified
	// unkicked: members were admitted since the last ring kick. Members discovered together
	// (a join's push/pull delivers the whole cluster at once) are admitted together: the
	// kick waits until every first probe has finished, so the ring changes once rather than
	// through intermediate member sets, each of which would move keys (and warm them) twice.
	unkicked bool
}

// probeState is one unverified member's probe loop; replaced (and so stopped) when the
// member moves, removed when it is gone or verified.
type probeState struct {
	addr     string
	tried    bool // the first probe has finished
	failures int
	lastErr  error
}

func newAdmission(c *Cluster) *admission {
	return &admission{c: c, admitted: make(map[string]string), probing: make(map[string]*probeState)}
}

// filter returns the members of live (sorted, from memberlist) that are verified, this
// node included, in the same order; it starts probes for the others and forgets members
// that are no longer live. The rebuild goroutine calls it.
func (a *admission) filter(live []Member) []Member {
	self := a.c.self.Name
	out := live[:0:0]
	var start []*probeState
	var startNames []string
	a.mu.Lock()
	seen := make(map[string]struct{}, len(live))
	for _, m := range live {
		seen[m.Name] = struct{}{}
		if m.Name == self || a.admitted[m.Name] == m.Addr {
			out = append(out, m)
			continue
		}
		delete(a.admitted, m.Name) // moved: verify the new address
		if st := a.probing[m.Name]; st == nil || st.addr != m.Addr {
			st = &probeState{addr: m.Addr}
			a.probing[m.Name] = st
			start = append(start, st)
			startNames = append(startNames, m.Name)
		}
	}
	for name := range a.admitted {
		if _, ok := seen[name]; !ok {
			delete(a.admitted, name)
		}
	}
	for name := range a.probing {
		if _, ok := seen[name]; !ok {
			delete(a.probing, name)
		}
	}
	a.mu.Unlock()
	for i, st := range start {
		a.startProbe(startNames[i], st)
	}
	return out
}

// startProbe runs st's probe loop on a cluster-owned goroutine, unless the cluster is
// shutting down (lifeMu orders the wg.Add before Shutdown's Wait).
func (a *admission) startProbe(name string, st *probeState) {
	c := a.c
	c.lifeMu.RLock()
	defer c.lifeMu.RUnlock()
	if c.closed.Load() {
		return
	}
	c.wg.Go(func() { a.probeLoop(name, st) })
}

// probeLoop probes until the member is verified, gone, moved, or the cluster stops.
func (a *admission) probeLoop(name string, st *probeState) {
	c := a.c
	backoff := minAdmitBackoff
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		err := c.tr.Probe(context.Background(), st.addr) // bounded by the transport's DialTimeout and Shutdown
		a.mu.Lock()
		if a.probing[name] != st {
			kick := a.settleLocked()
			a.mu.Unlock()
			if kick {
				c.kick()
			}
			return
		}
		st.tried = true
		if err == nil {
			delete(a.probing, name)
			a.admitted[name] = st.addr
			a.unkicked = true
			kick := a.settleLocked()
			a.mu.Unlock()
			c.logger.Debug("cluster: member verified", "peer", name, "addr", st.addr)
			if kick {
				c.kick()
			}
			return
		}
		st.failures++
		st.lastErr = err
		warn := st.failures == admitWarnAfter ||
			(st.failures == 1 && (errors.Is(err, transport.ErrAuthFailed) || errors.Is(err, transport.ErrLabelMismatch)))
		kick := a.settleLocked()
		a.mu.Unlock()
		if kick {
			c.kick()
		}
		level := slog.LevelDebug
		if warn {
			level = slog.LevelWarn
		}
		c.logger.Log(context.Background(), level, "cluster: not admitting member to the ring: data handshake failed",
			"peer", name, "addr", st.addr, "attempts", st.failures, "err", err)

		if timer == nil {
			timer = time.NewTimer(backoff)
		} else {
			timer.Reset(backoff)
		}
		select {
		case <-timer.C:
		case <-c.stopCh:
			return
		}
		backoff = min(2*backoff, maxAdmitBackoff)
	}
}

// settleLocked reports whether the ring should be rebuilt now: members were admitted and
// no member's first probe is still running. a.mu must be held.
func (a *admission) settleLocked() bool {
	if !a.unkicked {
		return false
	}
	for _, st := range a.probing {
		if !st.tried {
			return false
		}
	}
	a.unkicked = false
	return true
}

// unverified returns the members memberlist reports alive that are not (yet) in the ring,
// with the last handshake error of each (nil while the first probe runs).
func (a *admission) unverified() map[string]error {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]error, len(a.probing))
	for name, st := range a.probing {
		out[name] = st.lastErr
	}
	return out
}
