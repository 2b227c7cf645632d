package engine

import (
	"fmt"
	"time"

	"github.com/distcache/distcache/internal/membership"
)

// ClusterTuning holds the membership and connection timings and limits a
// user may tune (see WithClusterTuning). A zero field keeps its default.
// Give every node of a cluster the same values: nodes probing at different
// rates disagree about who has failed.
type ClusterTuning struct {
	// LocalNetwork starts from memberlist's local-network preset instead of
	// its LAN one: a 200 ms probe timeout, 1 s TCP timeouts and fewer
	// retransmits, and shorter defaults for PushPullInterval (5 s),
	// GossipToTheDeadTime (2 s) and DeadNodeReclaimTime (1 s). For tests
	// and single-host clusters: it declares nodes dead too eagerly for a
	// real network.
	LocalNetwork bool

	// ProbeInterval and ProbeTimeout tune failure detection: each node
	// probes one peer every ProbeInterval, which must answer within
	// ProbeTimeout. A crash is detected within a few ProbeIntervals.
	// Default 1 s and 400 ms (LocalNetwork: 200 ms). ProbeTimeout must be
	// below half of ProbeInterval: a peer asked to probe indirectly waits
	// ProbeTimeout too, and an answer later than ProbeInterval counts
	// against the asking node's own health (see CutOffScore).
	ProbeInterval, ProbeTimeout time.Duration
	// PushPullInterval is how often a node exchanges its full membership
	// state with a random peer, which bounds how long a lost gossip message
	// leaves views divergent. Default 10 s; memberlist scales it up beyond
	// 32 nodes. Shorter converges faster at the price of bandwidth.
	PushPullInterval time.Duration
	// GossipToTheDeadTime is how long a dead node keeps receiving gossip,
	// so that a node declared dead by mistake hears of it and refutes.
	// Default 30 s.
	GossipToTheDeadTime time.Duration
	// DeadNodeReclaimTime is how long after a node was declared dead its
	// name may be taken by a node at another address (a pod restarted with
	// a new IP). Default 10 s; negative: never.
	DeadNodeReclaimTime time.Duration
	// RingDebounce is how long a node waits after a membership event before
	// it rebuilds its ring, so that a burst of joins costs one rebuild.
	// Default 50 ms; negative: rebuild at once.
	RingDebounce time.Duration

	// PauseLimit is the longest gap in this process's execution (SIGSTOP, a
	// VM pause, CPU starvation) after which the node stops trusting what it
	// cached, since peers may have taken over its keys meanwhile. Default:
	// the probe interval. Raise it on machines where the process is often
	// starved, at the price of serving entries a partition may have made
	// stale.
	PauseLimit time.Duration
	// CutOffScore is the memberlist health score (0 healthy, up to 8) from
	// which a node takes itself to be cut off from most of its peers and
	// stops caching. Default 3 (sustained probe failures, not one lost
	// packet). A failed probe also makes the node ping a sample of members
	// directly, and it is cut off too while two rounds in a row reach at
	// most half of them (the score misses the small side of a partition of
	// two nodes or more). Above 8 neither triggers.
	CutOffScore int

	// DialTimeout bounds dialing a peer's data port, the TLS and data
	// handshakes included. Default 2 s.
	DialTimeout time.Duration
	// IdleTimeout closes an accepted data connection that served no request
	// for this long (the peer redials on its next request), which bounds how
	// long an abandoned connection holds a connection slot. Default 5 min;
	// negative: never.
	IdleTimeout time.Duration
	// MaxConnsPerIP bounds the connections accepted from one IP address
	// (data, gossip streams and handshakes in progress); more are closed at
	// once. Nodes sharing an address (behind NAT, or a test cluster on
	// 127.0.0.1) each hold a few connections to every other: raise it to
	// about 4 per node sharing one address. Default 64; negative: no limit.
	MaxConnsPerIP int
	// MaxPendingConns bounds the accepted connections still in their
	// handshake, over all addresses; more are closed at once. Default 128;
	// negative: no limit.
	MaxPendingConns int
}

// problems reports the invalid fields, each named.
func (t ClusterTuning) problems() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ClusterTuning."+format, args...)) }
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", t.ProbeInterval}, {"ProbeTimeout", t.ProbeTimeout},
		{"PushPullInterval", t.PushPullInterval}, {"GossipToTheDeadTime", t.GossipToTheDeadTime},
		{"PauseLimit", t.PauseLimit}, {"DialTimeout", t.DialTimeout},
	} {
		if d.v < 0 {
			bad("%s must be >= 0, got %v", d.name, d.v)
		}
	}
	if t.ProbeInterval > 0 && 2*t.ProbeTimeout >= t.ProbeInterval {
		bad("ProbeTimeout %v must be below half of ProbeInterval %v", t.ProbeTimeout, t.ProbeInterval)
	}
	if t.CutOffScore < 0 {
		bad("CutOffScore must be >= 0, got %d", t.CutOffScore)
	}
	return errs
}

// clusterConfig returns the cluster config the tuning starts from: the
// preset, then every non-zero field.
func (t ClusterTuning) clusterConfig() membership.Config {
	c := membership.DefaultConfig()
	if t.LocalNetwork {
		c = membership.DefaultLocalConfig()
	}
	set := func(dst *time.Duration, v time.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	set(&c.ProbeInterval, t.ProbeInterval)
	set(&c.ProbeTimeout, t.ProbeTimeout)
	set(&c.PushPullInterval, t.PushPullInterval)
	set(&c.GossipToTheDeadTime, t.GossipToTheDeadTime)
	set(&c.DeadNodeReclaimTime, t.DeadNodeReclaimTime)
	set(&c.RingDebounce, t.RingDebounce)
	set(&c.PauseLimit, t.PauseLimit)
	set(&c.Transport.DialTimeout, t.DialTimeout)
	set(&c.Transport.IdleTimeout, t.IdleTimeout)
	if t.CutOffScore != 0 {
		c.CutOffScore = t.CutOffScore
	}
	if t.MaxConnsPerIP != 0 {
		c.Transport.MaxConnsPerIP = t.MaxConnsPerIP
	}
	if t.MaxPendingConns != 0 {
		c.Transport.MaxPendingConns = t.MaxPendingConns
	}
	return c
}
