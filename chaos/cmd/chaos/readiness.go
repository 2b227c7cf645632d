package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/distcache/distcache/chaos/internal/ctlapi"
)

// statuses reads the status of every serving node in parallel; nil for a
// node that is down or did not answer within a second.
func (c *cluster) statuses(ctx context.Context) ([]*ctlapi.Status, error) {
	out := make([]*ctlapi.Status, len(c.nodes))
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		cl := n.client.Load()
		if cl == nil {
			errs[i] = fmt.Errorf("%s is down", n.name)
			continue
		}
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			st, err := cl.Status(sctx)
			if err != nil {
				errs[i] = fmt.Errorf("%s: status: %w", n.name, err)
				return
			}
			out[i] = &st
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// serving reports whether every node serves on the full ring: each is up,
// has every node in its ring, all rings have one fingerprint, and a Get
// through each node succeeds. The reason says what is missing.
func (c *cluster) serving(ctx context.Context, sts []*ctlapi.Status) (bool, string) {
	var fp uint64
	for i, st := range sts {
		if st == nil {
			return false, c.nodes[i].name + " does not answer"
		}
		if st.RingMembers != len(c.nodes) {
			return false, fmt.Sprintf("%s has %d members in its ring", st.Name, st.RingMembers)
		}
		if i == 0 {
			fp = st.Fingerprint
		} else if st.Fingerprint != fp {
			return false, "rings differ"
		}
	}
	for _, n := range c.nodes {
		cl := n.client.Load()
		if cl == nil {
			return false, n.name + " is down"
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := cl.Op(pctx, ctlapi.OpGet, "probe-"+n.name, 0, time.Second)
		cancel()
		if err != nil || !res.OK {
			return false, fmt.Sprintf("probe Get through %s failed: %v %s", n.name, err, res.Msg)
		}
	}
	return true, ""
}

// waitServing waits until every node serves on the full ring, up to bound.
func (c *cluster) waitServing(ctx context.Context, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		sts, _ := c.statuses(ctx)
		ok, why := c.serving(ctx, sts)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not serving after %s: %s", bound, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
