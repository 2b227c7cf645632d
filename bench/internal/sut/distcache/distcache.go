package distcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/bench/internal/sut"
	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
)

// KeySpace is the keyspace every node registers.
const KeySpace = "bench"

// MaxBytes is each node's store budget.
const MaxBytes = 256 << 20

// System is a distcache cluster. Create it with New.
type System struct {
	name  string
	label string
	opts  []engine.Option
	note  string
	src   *sut.Source

	nodes   []atomic.Pointer[engine.Engine] // nil while a node is stopped
	retired atomic.Int64                    // Forwarded of stopped nodes
	mu      sync.Mutex                      // serialises Start, StopNode, RestartNode, Close
}

func forwarded(e *engine.Engine) int64 {
	st, _ := e.Stats().KeySpace(KeySpace)
	return st.Forwarded
}

// RemoteFetches implements sut.RemoteCounter: requests sent to owners
// (one per key for Get, one per owner for GetMany), summed over the nodes.
func (s *System) RemoteFetches() int64 {
	n := s.retired.Load()
	for i := range s.nodes {
		if e := s.nodes[i].Load(); e != nil {
			n += forwarded(e)
		}
	}
	return n
}

// New returns a System named "distcache" whose cluster label is label.
func New(label string) *System { return &System{name: "distcache", label: label} }

// NewVariant returns a System with its own name whose engines get opts on
// top of the defaults (e.g. "distcache+warmup" with engine.WithWarmup);
// note says what they are in the report.
func NewVariant(name, label, note string, opts ...engine.Option) *System {
	return &System{name: name, label: label, opts: opts, note: note}
}

// Name implements sut.System.
func (s *System) Name() string { return s.name }

// Notes implements sut.System.
func (s *System) Notes() []string {
	notes := []string{
		"Get = Engine.Get (read-through, one DataSource call per key cluster-wide); Put = Engine.Put; GetMany = Engine.GetMany (one request per remote owner).",
		"3 engines in one process on 127.0.0.1:0, static discovery, testutil.LocalOptions (memberlist DefaultLocalConfig, 200 ms probes); keyspace of 256 MiB per node, no TTL, the default near cache (32 MiB, 2 s) unless a variant changes it.",
		"StopNode = Engine.Stop (graceful leave); RestartNode = a new engine with the same node name joining the live nodes.",
	}
	if s.note != "" {
		notes = append(notes, "Variant: "+s.note+".")
	}
	return notes
}

// Start implements sut.System.
func (s *System) Start(ctx context.Context, n int, src *sut.Source) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
	s.nodes = make([]atomic.Pointer[engine.Engine], n)
	for i := range n {
		if err := s.startNode(ctx, i); err != nil {
			s.closeLocked(ctx)
			return err
		}
	}
	return s.waitConverged(ctx)
}

func (s *System) startNode(ctx context.Context, i int) error {
	var seeds []string
	for j := range s.nodes {
		if e := s.nodes[j].Load(); e != nil {
			seeds = append(seeds, e.Addr())
		}
	}
	opts := append(testutil.LocalOptions(s.label), engine.WithNodeName(fmt.Sprintf("node-%d", i)))
	opts = append(opts, s.opts...)
	ks := keyspace.New(KeySpace, MaxBytes, s.src)
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(&static.Config{Addresses: seeds}), []keyspace.KeySpace{ks}, opts...))
	if err != nil {
		return fmt.Errorf("distcache: new node %d: %w", i, err)
	}
	if err := e.Start(ctx); err != nil {
		return fmt.Errorf("distcache: start node %d: %w", i, err)
	}
	s.nodes[i].Store(e)
	return nil
}

// waitConverged waits until every live node's ring holds exactly the live
// nodes, with one fingerprint.
func (s *System) waitConverged(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var live []*engine.Engine
		for i := range s.nodes {
			if e := s.nodes[i].Load(); e != nil {
				live = append(live, e)
			}
		}
		ok := true
		for _, e := range live {
			r := enginehook.Cluster(e).Ring()
			if r.Len() != len(live) || r.Fingerprint() != enginehook.Cluster(live[0]).Ring().Fingerprint() {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("distcache: cluster did not converge within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Engine returns node i's engine (an error if i is out of range or the node
// is stopped), for measurements the sut.System interface does not cover.
func (s *System) Engine(i int) (*engine.Engine, error) { return s.node(i) }

func (s *System) node(i int) (*engine.Engine, error) {
	if i < 0 || i >= len(s.nodes) {
		return nil, sut.ErrNodeIndex
	}
	e := s.nodes[i].Load()
	if e == nil {
		return nil, sut.ErrNodeDown
	}
	return e, nil
}

// Get implements sut.System.
func (s *System) Get(ctx context.Context, node int, key string) ([]byte, error) {
	e, err := s.node(node)
	if err != nil {
		return nil, err
	}
	return e.Get(ctx, KeySpace, key)
}

// Put implements sut.System.
func (s *System) Put(ctx context.Context, node int, key string, value []byte) error {
	e, err := s.node(node)
	if err != nil {
		return err
	}
	return e.Put(ctx, KeySpace, engine.Entry{Key: key, Value: value})
}

// GetMany implements sut.System.
func (s *System) GetMany(ctx context.Context, node int, keys []string) (int, error) {
	e, err := s.node(node)
	if err != nil {
		return 0, err
	}
	m, err := e.GetMany(ctx, KeySpace, keys)
	return len(m), err
}

// StopNode implements sut.System.
func (s *System) StopNode(ctx context.Context, node int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.node(node)
	if err != nil {
		return err
	}
	s.nodes[node].Store(nil)
	s.retired.Add(forwarded(e))
	if err := e.Stop(ctx); err != nil {
		return fmt.Errorf("distcache: stop node %d: %w", node, err)
	}
	return s.waitConverged(ctx)
}

// RestartNode implements sut.System.
func (s *System) RestartNode(ctx context.Context, node int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if node < 0 || node >= len(s.nodes) {
		return sut.ErrNodeIndex
	}
	if s.nodes[node].Load() != nil {
		return fmt.Errorf("distcache: node %d is running", node)
	}
	if err := s.startNode(ctx, node); err != nil {
		return err
	}
	return s.waitConverged(ctx)
}

// Close implements sut.System.
func (s *System) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked(ctx)
}

// closeLocked stops the nodes one after the other, so that each leave
// reaches a live peer (stopping all at once makes every leave time out).
func (s *System) closeLocked(ctx context.Context) error {
	var errs []error
	for i := range s.nodes {
		if e := s.nodes[i].Swap(nil); e != nil {
			errs = append(errs, e.Stop(ctx))
		}
	}
	return errors.Join(errs...)
}
