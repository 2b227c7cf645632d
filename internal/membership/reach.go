package membership

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ProbeInterval is how often memberlist probes a member (the configured
// [Config.ProbeInterval] or the profile's).
func (c *Cluster) ProbeInterval() time.Duration {
	return cmpOr(c.cfg.ProbeInterval, c.cfg.Profile.memberlistConfig().ProbeInterval)
}

// Reach pings up to sample members other than this node, picked at random
// among the live ones (alive or suspect), directly (memberlist's UDP ping,
// bounded by the probe timeout) and in parallel, and returns how many
// answered and how many were asked. It tells a node on the small side of a
// partition that it is cut off when the health score cannot: memberlist
// asks only alive members to probe a target indirectly, so once the far
// side is suspect the only helpers are the node's fellows on the small
// side, whose nacks (they cannot reach the target either) clear it of
// blame, and its score stops rising.
func (c *Cluster) Reach(sample int) (answered, asked int) {
	var peers []Member
	for _, m := range c.Members() {
		if m.Name != c.self.Name {
			peers = append(peers, m)
		}
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	if len(peers) > sample {
		peers = peers[:sample]
	}
	var (
		n  atomic.Int32
		wg sync.WaitGroup
	)
	for _, m := range peers {
		wg.Go(func() {
			addr, err := net.ResolveUDPAddr("udp", m.Addr)
			if err != nil {
				return
			}
			if _, err := c.ml.Ping(m.Name, addr); err == nil {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return int(n.Load()), len(peers)
}
