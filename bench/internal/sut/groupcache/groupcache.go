package groupcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	gc "github.com/groupcache/groupcache-go/v3"
	"github.com/groupcache/groupcache-go/v3/transport"
	"github.com/groupcache/groupcache-go/v3/transport/peer"

	"github.com/distcache/distcache/bench/internal/sut"
)

// GroupName is the group every daemon registers.
const GroupName = "bench"

// CacheBytes is each daemon's group budget (7/8 main cache, 1/8 hot cache).
const CacheBytes = 256 << 20

// MaxIdleConnsPerHost of each daemon's HTTP client. Go's default client
// keeps only 2 idle connections per host, which makes 64 concurrent callers
// open and close a connection per request; 256 lets the pool keep up.
const MaxIdleConnsPerHost = 256

type node struct {
	daemon *gc.Daemon
	group  gc.Group
	client *http.Client
}

// System is a groupcache-go cluster. Create it with New.
type System struct {
	src     *sut.Source
	log     *slog.Logger
	nodes   []atomic.Pointer[node]
	mu      sync.Mutex // serialises Start, StopNode, RestartNode, Close; guards retired
	retired []*node    // stopped daemons, whose counters still count
}

func peerLoads(nd *node) int64 {
	st := nd.group.GroupStats()
	return st.PeerLoads.Get()
}

// RemoteFetches implements sut.RemoteCounter: values loaded from a peer
// (GroupStats.PeerLoads), summed over the daemons. Call it only while no
// operation is in flight: groupcache's GroupStats copies its atomic
// counters with a plain (racy) struct copy.
func (s *System) RemoteFetches() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, nd := range s.retired {
		n += peerLoads(nd)
	}
	for i := range s.nodes {
		if nd := s.nodes[i].Load(); nd != nil {
			n += peerLoads(nd)
		}
	}
	return n
}

// New returns an unstarted System.
func New() *System {
	return &System{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Name implements sut.System.
func (s *System) Name() string { return "groupcache" }

// Notes implements sut.System.
func (s *System) Notes() []string {
	return []string{
		"groupcache-go v3.5.0: Get = group.Get with a Getter over the DataSource (read-through; the caller gets its own copy, AllocatingByteSliceSink); every value fetched from a peer also lands in the caller's hot cache (1/8 of 256 MiB).",
		"Put = group.Set (to the owner, then broadcast to every other peer's main cache). GetMany is emulated: groupcache has no batch API, so 100 Gets run concurrently.",
		fmt.Sprintf("3 daemons in one process, HTTP/1.1 transport on 127.0.0.1:0, each with its own http.Client (MaxIdleConnsPerHost=%d instead of Go's default 2).", MaxIdleConnsPerHost),
		"No membership in groupcache: the harness calls SetPeers on the live daemons when a node stops or restarts (instantaneous).",
	}
}

// Start implements sut.System.
func (s *System) Start(ctx context.Context, n int, src *sut.Source) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
	s.nodes = make([]atomic.Pointer[node], n)
	for i := range n {
		if err := s.startNode(ctx, i); err != nil {
			s.closeLocked(ctx)
			return err
		}
	}
	return s.setPeers(ctx)
}

func (s *System) startNode(ctx context.Context, i int) error {
	client := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * MaxIdleConnsPerHost,
		MaxIdleConnsPerHost: MaxIdleConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
	}}
	tr := transport.NewHttpTransport(transport.HttpTransportOptions{Client: client, Logger: s.log})
	d, err := gc.ListenAndServe(ctx, "127.0.0.1:0", gc.Options{Transport: tr, Logger: s.log})
	if err != nil {
		return fmt.Errorf("groupcache: start daemon %d: %w", i, err)
	}
	src := s.src
	tg, err := d.NewGroup(GroupName, CacheBytes, gc.GetterFunc(func(ctx context.Context, key string, dest transport.Sink) error {
		v, err := src.Fetch(ctx, key)
		if err != nil {
			return err
		}
		return dest.SetBytes(v, time.Time{})
	}))
	if err != nil {
		_ = d.Shutdown(ctx)
		return fmt.Errorf("groupcache: new group on daemon %d: %w", i, err)
	}
	g, ok := tg.(gc.Group)
	if !ok {
		_ = d.Shutdown(ctx)
		return fmt.Errorf("groupcache: group of daemon %d is a %T, not a groupcache.Group", i, tg)
	}
	s.nodes[i].Store(&node{daemon: d, group: g, client: client})
	return nil
}

// setPeers tells every live daemon the live addresses.
func (s *System) setPeers(ctx context.Context) error {
	var infos []peer.Info
	var live []*node
	for i := range s.nodes {
		if nd := s.nodes[i].Load(); nd != nil {
			infos = append(infos, peer.Info{Address: nd.daemon.ListenAddress()})
			live = append(live, nd)
		}
	}
	for _, nd := range live {
		if err := nd.daemon.SetPeers(ctx, infos); err != nil {
			return fmt.Errorf("groupcache: set peers: %w", err)
		}
	}
	return nil
}

func (s *System) node(i int) (*node, error) {
	if i < 0 || i >= len(s.nodes) {
		return nil, sut.ErrNodeIndex
	}
	nd := s.nodes[i].Load()
	if nd == nil {
		return nil, sut.ErrNodeDown
	}
	return nd, nil
}

// Get implements sut.System.
func (s *System) Get(ctx context.Context, i int, key string) ([]byte, error) {
	nd, err := s.node(i)
	if err != nil {
		return nil, err
	}
	var b []byte
	if err := nd.group.Get(ctx, key, transport.AllocatingByteSliceSink(&b)); err != nil {
		return nil, err
	}
	return b, nil
}

// Put implements sut.System.
func (s *System) Put(ctx context.Context, i int, key string, value []byte) error {
	nd, err := s.node(i)
	if err != nil {
		return err
	}
	return nd.group.Set(ctx, key, value, time.Time{}, false)
}

// GetMany implements sut.System: concurrent Gets, as groupcache has no batch
// call.
func (s *System) GetMany(ctx context.Context, i int, keys []string) (int, error) {
	nd, err := s.node(i)
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
			var b []byte
			if err := nd.group.Get(ctx, k, transport.AllocatingByteSliceSink(&b)); err != nil {
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

// StopNode implements sut.System: the survivors drop the node from their
// peer lists first, then the daemon shuts down.
func (s *System) StopNode(ctx context.Context, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	nd, err := s.node(i)
	if err != nil {
		return err
	}
	s.nodes[i].Store(nil)
	s.retired = append(s.retired, nd)
	if err := s.setPeers(ctx); err != nil {
		return err
	}
	// Close the survivors' idle connections, which include those to the
	// stopped daemon: http.Server.Shutdown counts a connection that never
	// carried a request as active for 5 s, and pooled spare connections are
	// exactly that.
	for j := range s.nodes {
		if other := s.nodes[j].Load(); other != nil {
			other.client.CloseIdleConnections()
		}
	}
	return s.shutdown(ctx, nd)
}

func (s *System) shutdown(ctx context.Context, nd *node) error {
	err := nd.daemon.Shutdown(ctx)
	nd.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("groupcache: shutdown: %w", err)
	}
	return nil
}

// RestartNode implements sut.System: a new daemon (new port, empty caches)
// takes the node's slot and every live daemon learns the new peer list.
func (s *System) RestartNode(ctx context.Context, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.nodes) {
		return sut.ErrNodeIndex
	}
	if s.nodes[i].Load() != nil {
		return fmt.Errorf("groupcache: node %d is running", i)
	}
	if err := s.startNode(ctx, i); err != nil {
		return err
	}
	return s.setPeers(ctx)
}

// Close implements sut.System.
func (s *System) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked(ctx)
}

func (s *System) closeLocked(ctx context.Context) error {
	var errs []error
	var live []*node
	for i := range s.nodes {
		if nd := s.nodes[i].Swap(nil); nd != nil {
			live = append(live, nd)
		}
	}
	for _, nd := range live {
		if err := s.shutdown(ctx, nd); err != nil {
			errs = append(errs, err)
		}
	}
	// A daemon's client may hold idle connections to daemons shut down after it.
	for _, nd := range live {
		nd.client.CloseIdleConnections()
	}
	return errors.Join(errs...)
}
