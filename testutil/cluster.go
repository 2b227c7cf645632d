package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/keyspace"
)

// ClusterConfig configures NewCluster.
type ClusterConfig struct {
	// KeySpaces builds the keyspaces of node i (every node must have the same
	// names). Nil: one keyspace "test" of 64 MiB over DataSource.
	KeySpaces func(i int) []keyspace.KeySpace
	// Options are extra engine options for every node, applied after the
	// test defaults (127.0.0.1:0, fast gossip, short timeouts).
	Options []engine.Option
	// NodeOptions, when set, gives node i options of its own, applied after
	// Options (a meter provider for one node, say).
	NodeOptions func(i int) []engine.Option
	// Label is the cluster label; empty: a name unique to the test.
	Label string
	// InMemory runs the nodes on one in-memory network (see [InMemory]) instead of
	// loopback sockets, so that the cluster can run inside a testing/synctest bubble.
	InMemory bool
}

// Cluster is a set of engines in this process, one per node.
type Cluster struct {
	tb  testing.TB
	cfg ClusterConfig
	// DataSource backs the default keyspace "test" on every node.
	DataSource *DataSource

	// network is the InMemory option every node gets; nil on sockets.
	network engine.Option

	mu    sync.Mutex // guards nodes, names
	nodes []*engine.Engine
	names []string
}

// DefaultKeySpace is the keyspace NewCluster creates when none is given.
const DefaultKeySpace = "test"

// NewCluster starts n engines joined into one cluster and waits until every
// node sees n members in its ring. They are stopped by tb.Cleanup.
func NewCluster(tb testing.TB, n int, cfg ClusterConfig) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, cfg: cfg, DataSource: NewDataSource()}
	if c.cfg.Label == "" {
		c.cfg.Label = "test-" + tb.Name()
	}
	if c.cfg.InMemory {
		c.network = InMemory()
	}
	tb.Cleanup(c.stopAll)
	for i := range n {
		c.StartNode(fmt.Sprintf("node-%d", i))
	}
	c.WaitConverged()
	return c
}

// LocalOptions are the engine options NewCluster uses for loopback nodes.
func LocalOptions(label string) []engine.Option {
	return []engine.Option{
		engine.WithBindAddr("127.0.0.1"),
		engine.WithBindPort(0),
		engine.WithLabel(label),
		engine.WithJoinRetryInterval(20 * time.Millisecond),
		engine.WithDiscoveryInterval(200 * time.Millisecond),
		engine.WithBootstrapTimeout(10 * time.Second),
		engine.WithShutdownTimeout(5 * time.Second),
		engine.WithClusterTuning(LocalTuning()),
	}
}

// LocalTuning is the cluster tuning LocalOptions uses: memberlist's local
// preset with 200 ms probes. Change a field and pass it to
// engine.WithClusterTuning after LocalOptions to vary one timing.
func LocalTuning() engine.ClusterTuning {
	return engine.ClusterTuning{
		LocalNetwork:  true,
		ProbeInterval: 200 * time.Millisecond,
		ProbeTimeout:  80 * time.Millisecond,
		RingDebounce:  10 * time.Millisecond,
		// Above the 200 ms probe interval: a test process starved by a
		// busy CI machine must not flush its caches mid-test.
		PauseLimit: time.Second,
		// Likewise, 100 ms probe timeouts missed on a starved machine
		// must not make a node believe itself cut off: only the
		// ring-based minority mode acts in tests.
		CutOffScore: 100,
	}
}

func (c *Cluster) logger() *slog.Logger {
	if os.Getenv("DISTCACHE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// StartNode starts one more node with the given name, joined to the live
// nodes, and returns its index. A name that was used before (a stopped
// node) restarts that node on a new port.
func (c *Cluster) StartNode(name string) int {
	c.tb.Helper()
	var seeds []string
	c.mu.Lock()
	for _, e := range c.nodes {
		if e != nil && e.Addr() != "" {
			seeds = append(seeds, e.Addr())
		}
	}
	c.mu.Unlock()
	kss := []keyspace.KeySpace{keyspace.New(DefaultKeySpace, 64<<20, c.DataSource)}
	idx := c.indexOf(name)
	if c.cfg.KeySpaces != nil {
		kss = c.cfg.KeySpaces(max(idx, c.Len()))
	}
	opts := append(LocalOptions(c.cfg.Label), engine.WithNodeName(name))
	if c.network != nil {
		opts = append(opts, c.network)
	}
	if l := c.logger(); l != nil {
		opts = append(opts, engine.WithLogger(l))
	}
	opts = append(opts, c.cfg.Options...)
	if c.cfg.NodeOptions != nil {
		opts = append(opts, c.cfg.NodeOptions(max(idx, c.Len()))...)
	}
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(&static.Config{Addresses: seeds}), kss, opts...))
	if err != nil {
		c.tb.Fatalf("testutil: new engine %s: %v", name, err)
	}
	if err := e.Start(context.Background()); err != nil {
		c.tb.Fatalf("testutil: start engine %s: %v", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if idx >= 0 {
		c.nodes[idx] = e
		return idx
	}
	c.nodes = append(c.nodes, e)
	c.names = append(c.names, name)
	return len(c.nodes) - 1
}

func (c *Cluster) indexOf(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.names {
		if n == name {
			return i
		}
	}
	return -1
}

// Len is the number of nodes ever started (stopped ones included).
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Node returns engine i (nil once stopped).
func (c *Cluster) Node(i int) *engine.Engine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Live returns the indexes of running nodes.
func (c *Cluster) Live() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, e := range c.nodes {
		if e != nil {
			out = append(out, i)
		}
	}
	return out
}

// Name returns node i's name.
func (c *Cluster) Name(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.names[i]
}

// WaitConverged waits until every live node's ring has exactly the live
// nodes, with one fingerprint.
func (c *Cluster) WaitConverged() {
	c.tb.Helper()
	WaitFor(c.tb, 0, func() bool {
		live := c.Live()
		var fp uint64
		for j, i := range live {
			r := enginehook.Cluster(c.Node(i)).Ring()
			if r.Len() != len(live) {
				return false
			}
			if j == 0 {
				fp = r.Fingerprint()
			} else if r.Fingerprint() != fp {
				return false
			}
		}
		return true
	}, "cluster of %d nodes did not converge", len(c.Live()))
}

// OwnerIndex returns the index of the node owning key, per node 'from”s ring.
func (c *Cluster) OwnerIndex(from int, key string) int {
	owner, err := c.Node(from).Owner(key)
	if err != nil {
		c.tb.Fatalf("testutil: owner of %q: %v", key, err)
	}
	if i := c.indexOf(owner.Name); i >= 0 {
		return i
	}
	c.tb.Fatalf("testutil: owner %s of %q is not a node of this cluster", owner.Name, key)
	return -1
}

// KeysOwnedBy returns n distinct keys "<prefix>-<i>" owned by node i.
func (c *Cluster) KeysOwnedBy(i, n int, prefix string) []string {
	var out []string
	for j := 0; len(out) < n; j++ {
		k := fmt.Sprintf("%s-%d", prefix, j)
		if c.OwnerIndex(i, k) == i {
			out = append(out, k)
		}
	}
	return out
}

// StopNode stops node i gracefully (it leaves the cluster).
func (c *Cluster) StopNode(i int) {
	c.tb.Helper()
	e := c.take(i)
	if err := e.Stop(context.Background()); err != nil {
		c.tb.Errorf("testutil: stop node %d: %v", i, err)
	}
}

// CrashNode stops node i without a graceful leave: its traffic is cut off
// first, so peers notice only through failure detection.
func (c *Cluster) CrashNode(i int) {
	c.tb.Helper()
	e := c.take(i)
	enginehook.Cluster(e).Transport().SetBlocked(func(string) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.Stop(ctx) // its leave cannot get out; errors are expected
}

// Isolate cuts node i off from every other node (both directions) until
// Heal is called; the node keeps running.
func (c *Cluster) Isolate(i int) {
	self := c.Node(i)
	selfAddr := self.Addr()
	enginehook.Cluster(self).Transport().SetBlocked(func(string) bool { return true })
	for _, j := range c.Live() {
		if j != i {
			enginehook.Cluster(c.Node(j)).Transport().SetBlocked(func(a string) bool { return a == selfAddr })
		}
	}
}

// Heal lifts every Isolate.
func (c *Cluster) Heal() {
	for _, j := range c.Live() {
		enginehook.Cluster(c.Node(j)).Transport().SetBlocked(nil)
	}
}

func (c *Cluster) take(i int) *engine.Engine {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.nodes[i]
	if e == nil {
		c.tb.Fatalf("testutil: node %d is not running", i)
	}
	c.nodes[i] = nil
	return e
}

// stopAll stops the live nodes one after another: each leave is then heard
// by the remaining nodes at once. (Stopping all at the same moment works
// too, but every node waits for memberlist to gossip its leave message to
// peers that are leaving as well, up to the leave timeout.)
func (c *Cluster) stopAll() {
	for _, i := range c.Live() {
		if err := c.take(i).Stop(context.Background()); err != nil {
			c.tb.Errorf("testutil: stop node %d: %v", i, err)
		}
	}
}
