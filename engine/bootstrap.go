package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Joining: Start's bootstrap, and the periodic re-discovery after it.

// bootstrap joins discovered peers until the quorum is met, then waits
// for the members' rings to agree (awaitRingAgreement). A live member
// holding this node's name fails it.
func (e *Engine) bootstrap(ctx context.Context) error {
	end := time.Now().Add(e.cfg.BootstrapTimeout)
	deadline := time.NewTimer(e.cfg.BootstrapTimeout)
	defer deadline.Stop()
	var lastErr error
	for {
		if err := e.discoverAndJoin(ctx); err != nil {
			lastErr = err
		}
		if err := e.cl.NameConflict(); err != nil {
			return fmt.Errorf("distcache: start: %w", err)
		}
		n := e.cl.NumMembers()
		if n >= e.cfg.MinimumPeersQuorum {
			return e.awaitRingAgreement(ctx, end)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("distcache: start: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w: %d of %d members after %v (last error: %v)",
				ErrClusterQuorum, n, e.cfg.MinimumPeersQuorum, e.cfg.BootstrapTimeout, lastErr)
		case <-time.After(e.cfg.JoinRetryInterval):
		}
	}
}

// discoverAndJoin asks the provider for peers and joins every address that
// is not already a member (joining through every node, not one seed,
// converges deterministically).
func (e *Engine) discoverAndJoin(ctx context.Context) error {
	addrs, err := e.cfg.Provider.DiscoverPeers(ctx)
	if err != nil {
		return fmt.Errorf("discover peers: %w", err)
	}
	known := map[string]bool{}
	for _, m := range e.cl.Ring().Members() {
		known[m.Addr] = true
	}
	var todo []string
	for _, a := range addrs {
		if !known[a] { // the cluster filters out our own address
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if _, err := e.cl.Join(ctx, todo); err != nil {
		e.log.Debug("join", "peers", todo, "err", err)
		return err
	}
	return nil
}

// discoveryLoop re-discovers and re-joins peers periodically, after a random
// first delay so that nodes started together do not poll in lockstep.
func (e *Engine) discoveryLoop() {
	d := e.cfg.DiscoveryInterval
	timer := time.NewTimer(d/2 + rand.N(d/2+1))
	defer timer.Stop()
	for {
		select {
		case <-e.base.Done():
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(e.base, d)
		if err := e.discoverAndJoin(ctx); err != nil && e.base.Err() == nil {
			e.log.Debug("periodic discovery", "err", err)
		}
		cancel()
		timer.Reset(d)
	}
}

// awaitRingAgreement waits until this node's ring holds the members it
// joined and every reachable member of that ring reports the same ring
// (fingerprint): when Start returns, this node and its peers place every
// key on the same owner, so a storm of Gets of a cold key right after Start
// costs one fetch, not one per disagreeing node. Peers rebuild their rings
// a debounce after they hear of a join, so this takes tens of
// milliseconds. Bounded by the bootstrap deadline: past it Start returns
// anyway, logging the peers that still disagree (rings converge within a
// gossip round or two).
func (e *Engine) awaitRingAgreement(ctx context.Context, deadline time.Time) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		e.cl.SyncRing()
		if err := e.cl.NameConflict(); err != nil {
			return fmt.Errorf("distcache: start: %w", err)
		}
		ring := e.cl.Ring()
		var behind []string
		for _, m := range e.cl.Members() {
			if !ring.Contains(m.Name) {
				behind = append(behind, m.Name+" (not in our ring yet)")
			}
		}
		if len(behind) == 0 {
			if behind = e.peersBehind(ctx, ring.Fingerprint()); len(behind) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			e.log.Warn("start: peers' rings still differ from ours at the bootstrap deadline; starting anyway",
				"peers", behind, "members", ring.Len(), "fingerprint", fingerprint(ring.Fingerprint()))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("distcache: start: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// peersBehind asks every other member of this node's ring for its ring
// fingerprint and returns the names of those that answer with another
// one. A member that does not answer is not waited for: it cannot serve
// forwarded requests either, and failure detection will remove it.
func (e *Engine) peersBehind(ctx context.Context, want uint64) []string {
	ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	type answer struct {
		name string
		ok   bool
	}
	members := e.cl.Ring().Members()
	answers := make(chan answer, len(members))
	n := 0
	for _, m := range members {
		if m.Name == e.selfName {
			continue
		}
		n++
		go func() {
			fp, err := e.peers.ringInfo(ctx, m)
			answers <- answer{m.Name, err != nil || fp == want}
		}()
	}
	var behind []string
	for range n {
		if a := <-answers; !a.ok {
			behind = append(behind, a.name)
		}
	}
	return behind
}

// fingerprint formats a ring fingerprint the one way logs show it.
func fingerprint(f uint64) string { return fmt.Sprintf("%016x", f) }
