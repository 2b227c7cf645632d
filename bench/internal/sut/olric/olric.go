package olric

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olric-data/olric"
	"github.com/olric-data/olric/config"
	"golang.org/x/sync/singleflight"

	"github.com/distcache/distcache/bench/internal/sut"
)

// DMapName is the distributed map every member uses.
const DMapName = "bench"

type member struct {
	db      *olric.Olric
	dm      olric.DMap
	mlAddr  string // memberlist host:port, what peers join through
	flights singleflight.Group
	done    chan error // Start's result, once the member stops
}

// System is an embedded Olric cluster. Create it with New.
type System struct {
	src   *sut.Source
	nodes []atomic.Pointer[member]
	mu    sync.Mutex // serialises Start, StopNode, RestartNode, Close
}

// New returns an unstarted System.
func New() *System { return &System{} }

// Name implements sut.System.
func (s *System) Name() string { return "olric" }

// Notes implements sut.System.
func (s *System) Notes() []string {
	return []string{
		"olric v0.7.0 embedded, config.New(\"local\") (memberlist DefaultLocalConfig), ReplicaCount 1, 271 partitions, 127.0.0.1 with free ports, logs discarded.",
		"No read-through in Olric: Get is emulated cache-aside (DMap.Get; on ErrKeyNotFound, under a per-node singleflight, DMap.Get again, then a DataSource fetch and DMap.Put). Misses are not coordinated across nodes.",
		"Put = DMap.Put. GetMany = 100 concurrent DMap.Get (cache-aside on a miss): Olric's batch API, DMap.Pipeline (a cluster client, one round trip per partition), measured slower here (35k vs 43k keys/s with PipelineConcurrency 16).",
		"StopNode = Olric.Shutdown (leaves the cluster); RestartNode = a new member on new ports joining the live ones.",
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start implements sut.System.
func (s *System) Start(ctx context.Context, n int, src *sut.Source) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
	s.nodes = make([]atomic.Pointer[member], n)
	for i := range n {
		if err := s.startNode(ctx, i); err != nil {
			s.closeLocked(ctx)
			return err
		}
	}
	return s.waitMembers(ctx)
}

func (s *System) startNode(ctx context.Context, i int) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("olric: free port: %w", err)
	}
	mlPort, err := freePort()
	if err != nil {
		return fmt.Errorf("olric: free port: %w", err)
	}
	c := config.New("local")
	c.BindAddr = "127.0.0.1"
	c.BindPort = port
	c.LogOutput = io.Discard // olric hands its logger to memberlist too
	c.LogLevel = "ERROR"
	c.LogVerbosity = 1
	c.LeaveTimeout = time.Second
	c.MemberlistConfig.BindAddr = "127.0.0.1"
	c.MemberlistConfig.BindPort = mlPort
	c.MemberlistConfig.AdvertiseAddr = "127.0.0.1"
	c.MemberlistConfig.AdvertisePort = mlPort
	for j := range s.nodes {
		if m := s.nodes[j].Load(); m != nil {
			c.Peers = append(c.Peers, m.mlAddr)
		}
	}
	started := make(chan struct{})
	c.Started = func() { close(started) }
	db, err := olric.New(c)
	if err != nil {
		return fmt.Errorf("olric: new member %d: %w", i, err)
	}
	m := &member{db: db, mlAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(mlPort)), done: make(chan error, 1)}
	go func() { m.done <- db.Start() }()
	select {
	case <-started:
	case err := <-m.done:
		return fmt.Errorf("olric: start member %d: %w", i, err)
	case <-time.After(30 * time.Second):
		_ = db.Shutdown(ctx)
		return fmt.Errorf("olric: member %d did not start within 30s", i)
	case <-ctx.Done():
		_ = db.Shutdown(context.Background())
		return ctx.Err()
	}
	dm, err := db.NewEmbeddedClient().NewDMap(DMapName)
	if err != nil {
		_ = s.shutdown(ctx, m)
		return fmt.Errorf("olric: dmap on member %d: %w", i, err)
	}
	m.dm = dm
	s.nodes[i].Store(m)
	return nil
}

// waitMembers waits until every live member lists exactly the live members
// and can serve a Put and a Get.
func (s *System) waitMembers(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var live []*member
		for i := range s.nodes {
			if m := s.nodes[i].Load(); m != nil {
				live = append(live, m)
			}
		}
		ok := true
		for j, m := range live {
			ms, err := m.db.NewEmbeddedClient().Members(ctx)
			if err != nil || len(ms) != len(live) {
				ok = false
				break
			}
			k := fmt.Sprintf("olric-probe-%d", j)
			if err := m.dm.Put(ctx, k, []byte("x")); err != nil {
				ok = false
				break
			}
			if _, err := m.dm.Get(ctx, k); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("olric: cluster did not converge within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *System) node(i int) (*member, error) {
	if i < 0 || i >= len(s.nodes) {
		return nil, sut.ErrNodeIndex
	}
	m := s.nodes[i].Load()
	if m == nil {
		return nil, sut.ErrNodeDown
	}
	return m, nil
}

// Get implements sut.System (cache-aside).
func (s *System) Get(ctx context.Context, i int, key string) ([]byte, error) {
	m, err := s.node(i)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, m, key)
}

func (s *System) get(ctx context.Context, m *member, key string) ([]byte, error) {
	r, err := m.dm.Get(ctx, key)
	if err == nil {
		return r.Byte()
	}
	if !errors.Is(err, olric.ErrKeyNotFound) {
		return nil, err
	}
	v, err, _ := m.flights.Do(key, func() (any, error) {
		// A flight that ended just before this one began may have stored it.
		if r, err := m.dm.Get(ctx, key); err == nil {
			return r.Byte()
		}
		v, err := s.src.Fetch(ctx, key)
		if err != nil {
			return nil, err
		}
		if err := m.dm.Put(ctx, key, v); err != nil {
			return nil, err
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Put implements sut.System.
func (s *System) Put(ctx context.Context, i int, key string, value []byte) error {
	m, err := s.node(i)
	if err != nil {
		return err
	}
	return m.dm.Put(ctx, key, value)
}

// GetMany implements sut.System: concurrent cache-aside Gets.
func (s *System) GetMany(ctx context.Context, i int, keys []string) (int, error) {
	m, err := s.node(i)
	if err != nil {
		return 0, err
	}
	var (
		wg    sync.WaitGroup
		found atomic.Int64
		mu    sync.Mutex
		errs  []error
	)
	for _, k := range keys {
		wg.Go(func() {
			if _, err := s.get(ctx, m, k); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			found.Add(1)
		})
	}
	wg.Wait()
	return int(found.Load()), errors.Join(errs...)
}

// StopNode implements sut.System.
func (s *System) StopNode(ctx context.Context, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.node(i)
	if err != nil {
		return err
	}
	s.nodes[i].Store(nil)
	if err := s.shutdown(ctx, m); err != nil {
		return err
	}
	return s.waitMembers(ctx)
}

func (s *System) shutdown(ctx context.Context, m *member) error {
	err := m.db.Shutdown(ctx)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		err = errors.Join(err, errors.New("olric: member did not stop within 10s"))
	}
	if err != nil {
		return fmt.Errorf("olric: shutdown: %w", err)
	}
	return nil
}

// RestartNode implements sut.System.
func (s *System) RestartNode(ctx context.Context, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.nodes) {
		return sut.ErrNodeIndex
	}
	if s.nodes[i].Load() != nil {
		return fmt.Errorf("olric: node %d is running", i)
	}
	if err := s.startNode(ctx, i); err != nil {
		return err
	}
	return s.waitMembers(ctx)
}

// Close implements sut.System.
func (s *System) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked(ctx)
}

func (s *System) closeLocked(ctx context.Context) error {
	var errs []error
	for i := range s.nodes {
		if m := s.nodes[i].Swap(nil); m != nil {
			if err := s.shutdown(ctx, m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
