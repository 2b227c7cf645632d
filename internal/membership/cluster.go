package membership

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/internal/transport"
	"github.com/hashicorp/memberlist"
)

// maxJoinConcurrency bounds how many addresses Join contacts at once.
const maxJoinConcurrency = 8

// Cluster is one node's membership in a gossip cluster and its view of
// placement. Create it with [New], add it to a cluster with [Cluster.Join],
// and stop it with [Cluster.Leave] then [Cluster.Shutdown]. All methods are
// safe for concurrent use.
type Cluster struct {
	cfg       Config
	ringCfg   RingConfig
	self      Member
	boundPort int
	logger    *slog.Logger
	tr        *transport.Transport
	ml        *memberlist.Memberlist
	stats     stats
	delegate  *delegate
	admit     *admission // members enter the ring after a data handshake (admission.go)

	ring      atomic.Pointer[Ring]
	rebuildMu sync.Mutex
	// agreeMu serialises recomputing agree, whether the ring holds exactly
	// the live members gossip knows (RingMatchesGossip).
	agreeMu sync.Mutex
	agree   atomic.Bool

	kickCh chan struct{} // capacity 1: coalesces membership events
	stopCh chan struct{} // closed by Shutdown
	wg     sync.WaitGroup

	// lifeMu orders Join/Leave against Shutdown: Join and Leave hold it for
	// reading while they use memberlist; Shutdown takes it for writing to set
	// closed, so no wg.Add or memberlist.Leave follows Shutdown.
	lifeMu       sync.RWMutex
	closed       atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
}

// stats are the cluster's counters.
type stats struct {
	rebuilds      atomic.Uint64
	rebuildErrors atomic.Uint64
	rejected      atomic.Uint64
	conflicts     atomic.Uint64
}

// Stats is a snapshot of the cluster's counters, for diagnostics.
type Stats struct {
	// RingRebuilds counts ring swaps after membership changes.
	RingRebuilds uint64
	// RingRebuildErrors counts failed rebuilds (the previous ring was kept).
	RingRebuildErrors uint64
	// RejectedPeers counts alive or merge messages about incompatible peers
	// (protocol version or placement config mismatch).
	RejectedPeers uint64
	// NameConflicts counts nodes seen claiming a live member's name from
	// another address.
	NameConflicts uint64
}

// New creates the transport and memberlist, with this node alone in its
// ring. It does not contact anyone: call [Cluster.Join]. On error nothing is
// left running.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	name := cfg.NodeName
	if name == "" {
		var err error
		if name, err = generateNodeName(); err != nil {
			return nil, err
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", name)

	c := &Cluster{
		cfg:     cfg,
		ringCfg: cfg.ringConfig(),
		logger:  logger,
		kickCh:  make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
	}

	tc := cfg.transportConfig(logger)
	tc.NodeName = name // peers see it as the caller of each request (Request.From)
	tr, err := transport.New(tc)
	if err != nil {
		return nil, fmt.Errorf("cluster: create transport: %w", err)
	}
	c.tr = tr
	c.boundPort = tr.BoundPort()

	// Resolve the advertised address ourselves so that Self().Addr is known
	// before memberlist starts, and so that AdvertisePort applies even when
	// AdvertiseAddr is empty.
	advIP, _, err := tr.FinalAdvertiseAddr(cfg.AdvertiseAddr, 0)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("%w: advertise address: %w", ErrInvalidConfig, err)
	}
	advPort := cmp.Or(cfg.AdvertisePort, c.boundPort)
	c.self = Member{Name: name, Addr: net.JoinHostPort(advIP.String(), strconv.Itoa(advPort))}

	meta := nodeMeta{protocol: ProtocolVersion, fingerprint: c.ringCfg.fingerprint()}
	d := newDelegate(meta, logger, func() { c.recomputeAgree(); c.kick() }, &c.stats)
	c.delegate = d
	d.self = name
	// Calls to a member while it was gone leave its pool in dial backoff:
	// forwards and invalidations to it must not fail once it is back.
	d.alive = func(m Member) {
		if m.Name != name {
			tr.ResetBackoff(m.Addr)
		}
	}
	mc := cfg.memberlistConfig(name)
	mc.Transport = tr
	mc.BindPort = c.boundPort // default port for join addresses without one
	mc.AdvertiseAddr = advIP.String()
	mc.AdvertisePort = advPort
	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Merge = d
	mc.Conflict = d
	mc.Logger = memberlistLogger(logger)

	initial, err := NewRing([]Member{c.self}, c.ringCfg)
	if err != nil {
		_ = tr.Shutdown()
		return nil, err
	}
	c.ring.Store(initial)

	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("cluster: create memberlist: %w", err)
	}
	c.ml = ml
	c.admit = newAdmission(c)
	c.wg.Go(c.rebuildLoop)
	logger.Debug("cluster: started", "addr", c.self.Addr, "profile", cfg.Profile.String())
	return c, nil
}

// generateNodeName returns hostname-<8 hex digits>.
func generateNodeName() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("cluster: generate node name: %w", err)
	}
	return host + "-" + hex.EncodeToString(b[:]), nil
}

// Join contacts every given address ("host:port", "host" for the bind port,
// or "name/host:port"), concurrently, and exchanges full state with each.
// Addresses that designate this node are skipped. It returns how many
// addresses were contacted successfully and errors.Join of every failure
// (each wraps [ErrJoinFailed]): n > 0 means the node is in a cluster even
// when err reports unreachable seeds. An empty or self-only list returns
// (0, nil). When ctx ends first, Join returns early with ctx's error; the
// attempts still running finish in the background (within memberlist's TCP
// timeout) and Shutdown waits for them. Join may be called again at any time
// (periodic re-join heals partitions).
func (c *Cluster) Join(ctx context.Context, addrs []string) (int, error) {
	var targets []string
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a != "" && !c.isSelfAddr(a) && !slices.Contains(targets, a) {
			targets = append(targets, a)
		}
	}
	if len(targets) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}

	c.lifeMu.RLock()
	if c.closed.Load() {
		c.lifeMu.RUnlock()
		return 0, ErrClosed
	}
	results := make(chan error, len(targets)) // buffered: workers never block
	sem := make(chan struct{}, maxJoinConcurrency)
	for _, addr := range targets {
		c.wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results <- fmt.Errorf("%w: %s: %w", ErrJoinFailed, addr, ctx.Err())
				return
			case <-c.stopCh:
				results <- fmt.Errorf("%w: %s: %w", ErrJoinFailed, addr, ErrClosed)
				return
			}
			defer func() { <-sem }()
			if _, err := c.ml.Join([]string{addr}); err != nil {
				c.logger.Debug("cluster: join failed", "peer", addr, "err", err)
				if rej, ok := c.delegate.takeMergeReject(canonicalAddr(addr)); ok {
					err = rej // typed: wraps ErrIncompatibleMember
				}
				results <- fmt.Errorf("%w: %s: %w", ErrJoinFailed, addr, err)
				return
			}
			results <- nil
		})
	}
	c.lifeMu.RUnlock()

	var (
		n    int
		errs []error
	)
	for range targets {
		select {
		case err := <-results:
			if err != nil {
				errs = append(errs, err)
			} else {
				n++
			}
		case <-ctx.Done():
			return n, errors.Join(append(errs, ctx.Err())...)
		}
	}
	if n > 0 {
		c.logger.Debug("cluster: joined", "contacted", n, "failed", len(errs))
	}
	return n, errors.Join(errs...)
}

// canonicalAddr turns a join address into memberlist's "ip:port" form when
// it holds an IP literal and a port; otherwise it returns it unchanged.
func canonicalAddr(a string) string {
	if _, rest, ok := strings.Cut(a, "/"); ok {
		a = rest
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return a
	}
	return net.JoinHostPort(ip.String(), port)
}

// isSelfAddr reports whether a join address designates this node: its
// name, its advertised address, or its bind address and port. Host names
// are not resolved.
func (c *Cluster) isSelfAddr(a string) bool {
	if name, rest, ok := strings.Cut(a, "/"); ok {
		if name == c.self.Name {
			return true
		}
		a = rest
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		host, port = a, strconv.Itoa(c.boundPort)
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil {
		return false
	}
	if net.JoinHostPort(ip.String(), port) == c.self.Addr {
		return true
	}
	if port != strconv.Itoa(c.boundPort) {
		return false
	}
	bind := net.ParseIP(c.cfg.bindAddr())
	return ip.Equal(bind) || (bind.IsUnspecified() && ip.IsLoopback())
}

// Self returns this node's name and advertised address.
func (c *Cluster) Self() Member { return c.self }

// Members returns the live members (alive or suspect, this node included
// unless it left), as a fresh slice sorted by name. The ring is built from
// those of them that completed a data handshake with this node (see
// admission.go): once it holds all of them, membership has settled.
func (c *Cluster) Members() []Member { return c.delegate.memberList() }

// RingMatchesGossip reports whether the ring holds exactly the live
// members gossip knows: false from a membership event until the ring
// rebuilt for it (after the debounce and admission), while other nodes
// may have rebuilt theirs already. One atomic load: it is recomputed on
// each membership event and ring swap, not per call.
func (c *Cluster) RingMatchesGossip() bool { return c.agree.Load() }

func (c *Cluster) recomputeAgree() {
	c.agreeMu.Lock()
	defer c.agreeMu.Unlock()
	ring, members := c.ring.Load(), c.delegate.memberList()
	ok := ring != nil && len(members) == ring.Len()
	for _, m := range members {
		ok = ok && ring.Contains(m.Name)
	}
	c.agree.Store(ok)
}

// NumMembers returns the number of live members.
func (c *Cluster) NumMembers() int { return c.ml.NumMembers() }

// Ring returns the current placement snapshot. It never returns nil, takes
// no lock, and the snapshot never changes: compare pointers or fingerprints
// to detect a swap.
func (c *Cluster) Ring() *Ring { return c.ring.Load() }

// Call sends req to member m over the transport's pooled connections and
// waits for the response, honouring ctx's deadline and cancellation.
// Transport errors (transport.ErrPeerUnavailable, ErrPeerOverloaded, ...)
// are returned as they are.
func (c *Cluster) Call(ctx context.Context, m Member, req transport.Request) (transport.Response, error) {
	return c.CallDeadline(ctx, m, req, time.Time{})
}

// CallDeadline is Call bounded also by deadline (zero: by ctx alone), which
// spares a caller with a deadline at hand the cost of a derived context.
func (c *Cluster) CallDeadline(ctx context.Context, m Member, req transport.Request, deadline time.Time) (transport.Response, error) {
	if c.closed.Load() {
		return transport.Response{}, ErrClosed
	}
	return c.tr.CallDeadline(ctx, m.Addr, req, deadline)
}

// Transport returns the underlying transport, e.g. to set the handler,
// drain or read its stats. Do not shut it down directly: use Shutdown.
func (c *Cluster) Transport() *transport.Transport { return c.tr }

// NameConflict returns an error wrapping [ErrNameTaken] if a live member
// at another address holds this node's name: memberlist keeps the first
// holder and ignores this node's claim, so this node must not serve. Seen
// by the time [Cluster.Join] returns when the holder is a member of a
// joined cluster.
func (c *Cluster) NameConflict() error {
	if addr := c.delegate.nameTakenBy.Load(); addr != nil {
		return fmt.Errorf("%w: %q is held by the live member at %s", ErrNameTaken, c.self.Name, *addr)
	}
	return nil
}

// SyncRing rebuilds the ring from the current member set at once, without
// waiting for the debounce (Start uses it so that it returns with a ring
// that holds every member it joined).
func (c *Cluster) SyncRing() { c.rebuild() }

// HealthScore is memberlist's local health score (Lifeguard awareness): 0
// while this node's probes of its peers get answers, rising with each probe
// that gets none, up to its maximum (8). A node cut off from most of its
// peers sees it climb while they still count as suspect, not dead.
func (c *Cluster) HealthScore() int { return c.ml.GetHealthScore() }

// CutOffScore is the configured [Config.CutOffScore], its default
// resolved: from this [Cluster.HealthScore] on, the node is cut off.
func (c *Cluster) CutOffScore() int {
	if c.cfg.CutOffScore > 0 {
		return c.cfg.CutOffScore
	}
	return 3
}

// PauseLimit is the configured [Config.PauseLimit], its default resolved.
func (c *Cluster) PauseLimit() time.Duration { return c.cfg.pauseLimit() }

// Stats returns a snapshot of the cluster's counters.
func (c *Cluster) Stats() Stats {
	return Stats{
		RingRebuilds:      c.stats.rebuilds.Load(),
		RingRebuildErrors: c.stats.rebuildErrors.Load(),
		RejectedPeers:     c.stats.rejected.Load(),
		NameConflicts:     c.stats.conflicts.Load(),
	}
}

// Leave broadcasts that this node is leaving, so peers drop it from their
// rings at once instead of after failure detection, and waits until the
// message has gone out to at least one peer or timeout passes (0 waits
// forever). The node keeps gossiping, and answering RPC, until Shutdown; its
// own ring no longer contains itself. Safe to call more than once; after
// Shutdown it returns ErrClosed.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.RLock()
	defer c.lifeMu.RUnlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.ml.Leave(timeout); err != nil {
		// memberlist waits until its leave message has been gossiped; when
		// every peer left at the same moment (a whole cluster stopping)
		// there is nobody left to gossip to and it times out. Nobody needed
		// the message then: that is not a failure.
		if others := c.liveOthers(); others > 0 {
			return fmt.Errorf("cluster: leave (%d peers still live): %w", others, err)
		}
		c.logger.Debug("cluster: leave message not gossiped, but no peer is left to hear it", "err", err)
	}
	c.logger.Debug("cluster: left")
	return nil
}

// liveOthers counts the members other than this node in the current view.
func (c *Cluster) liveOthers() int {
	n := 0
	for _, m := range c.Members() {
		if m.Name != c.self.Name {
			n++
		}
	}
	return n
}

// Shutdown stops the node: the ring goroutine, memberlist and the
// transport. Without a prior Leave, peers see a crash and remove the node
// after failure detection. Every goroutine the Cluster started has exited
// when it returns, including Join attempts still in flight (bounded by
// memberlist's TCP timeout: 10 s LAN, 1 s Local). memberlist does not join
// its own background goroutines: they stop on their next wake-up, within
// about a probe interval (leak checks in tests must allow for that).
// Idempotent; must not be called from OnRingChange.
func (c *Cluster) Shutdown() error {
	c.shutdownOnce.Do(func() {
		c.lifeMu.Lock()
		c.closed.Store(true)
		c.lifeMu.Unlock()
		close(c.stopCh)
		// memberlist shuts the transport down first, which fails any join
		// still in flight.
		if err := c.ml.Shutdown(); err != nil {
			c.shutdownErr = fmt.Errorf("cluster: shutdown memberlist: %w", err)
		}
		c.wg.Wait()
		c.logger.Debug("cluster: shut down")
	})
	return c.shutdownErr
}

// kick asks the rebuild goroutine to rebuild the ring. It never blocks: it
// runs under memberlist's node lock.
func (c *Cluster) kick() {
	select {
	case c.kickCh <- struct{}{}:
	default: // a rebuild is already pending; it will read the full state
	}
}

// rebuildLoop rebuilds the ring after membership events, at most once per
// debounce window.
func (c *Cluster) rebuildLoop() {
	debounce := c.cfg.ringDebounce()
	var timer *time.Timer
	if debounce > 0 {
		timer = time.NewTimer(debounce)
		timer.Stop()
		defer timer.Stop()
	}
	for {
		select {
		case <-c.stopCh:
			return
		case <-c.kickCh:
		}
		if timer != nil {
			// Events arriving during the window coalesce into the kick
			// channel and the rebuild below reads the full state anyway; a
			// kick left pending triggers one more rebuild.
			timer.Reset(debounce)
			select {
			case <-c.stopCh:
				return
			case <-timer.C:
			}
			select {
			case <-c.kickCh:
			default:
			}
		}
		c.rebuild()
	}
}

// rebuild recomputes the ring from the full member set and swaps it in.
// rebuildMu serialises it (the rebuild goroutine and SyncRing), so that
// OnRingChange never runs concurrently with itself.
func (c *Cluster) rebuild() {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	members := c.admit.filter(c.Members())
	prev := c.ring.Load()
	if prev.sameMembers(members) {
		return
	}
	next, err := NewRing(members, c.ringCfg)
	if err != nil {
		c.stats.rebuildErrors.Add(1)
		c.logger.Error("cluster: ring rebuild failed; keeping the previous ring", "members", len(members), "err", err)
		return
	}
	if c.cfg.BeforeRingChange != nil {
		c.cfg.BeforeRingChange(prev, next)
	}
	// A member new to the ring may be one that left or failed and came back
	// at the same address. Calls to it while it was gone put its pool in
	// dial backoff, which would fail the first forwards and hand-offs to it
	// for up to a second after it is back: end the backoff (gossip's join
	// event did too, unless a call failed since). Its pool is not closed:
	// calls to the member that is back may be in flight on it already.
	for _, m := range next.members {
		if old, ok := prev.Member(m.Name); (!ok || old.Addr != m.Addr) && m.Name != c.self.Name {
			c.tr.ResetBackoff(m.Addr)
		}
	}
	c.ring.Store(next)
	c.recomputeAgree()
	c.stats.rebuilds.Add(1)
	c.logger.Debug("cluster: ring changed", "members", next.Len(), "fingerprint", fmt.Sprintf("%016x", next.Fingerprint()))

	// Close pooled connections to members that left or moved.
	for _, m := range prev.members {
		if cur, ok := next.Member(m.Name); !ok || cur.Addr != m.Addr {
			if m.Name != c.self.Name {
				c.logger.Debug("cluster: member gone", "peer", m.Name, "addr", m.Addr)
				c.tr.ClosePeer(m.Addr)
			}
		}
	}
	if c.cfg.OnRingChange != nil {
		c.cfg.OnRingChange(prev, next)
	}
}
