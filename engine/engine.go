package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/keyspace"
)

// Engine is one node of a distcache cluster. Create it with New, then Start
// it; every method is safe for concurrent use. See the package doc for the
// read and write paths.
type Engine struct {
	cfg Config // validated copy; never written after New
	log *slog.Logger

	state atomic.Int32
	// serving is set once Start has set cl, peers, selfName and log, which
	// the RPC handler reads: the transport listens before that.
	serving atomic.Bool
	// keyspaces is the current immutable keyspace snapshot.
	keyspaces atomic.Pointer[ksTable]
	// ksMu serialises keyspace changes (UpdateKeySpace, DeleteKeySpace).
	ksMu sync.Mutex

	cl    *membership.Cluster
	peers peers // how the engine calls cl's members
	// invalidations batches the invalidations sent to each member
	// (invalidate_batch.go), pushes the written values (near_push.go).
	invalidations invalidationLines
	pushes        pushLines
	selfName      string // cl.Self().Name, set once in Start before any request
	obs           *observer

	// base is cancelled by Stop: background loops and in-flight loads end.
	base   context.Context
	cancel context.CancelFunc
	// spawnMu guards stopping against wg.Add after Stop began waiting, and
	// loads.
	spawnMu  sync.Mutex
	stopping bool
	wg       sync.WaitGroup
	// loads counts load goroutines, which Stop does not wait for past its
	// context (see loads.go).
	loads loadTracker

	// purging is set while purgeNotOwned runs; purgePending asks it to run
	// once more for a ring change that arrived meanwhile.
	purging, purgePending atomic.Bool
	// flushReq counts the flushes asked for (markUntrusted: this node may
	// have missed writes), flushDone the last one purgeNotOwned completed.
	// In between the stores are not trusted for reads (storeTrusted).
	// flushMu orders the requests' flushFrom marks.
	flushReq, flushDone atomic.Uint64
	flushMu             sync.Mutex
	// pause is the execution-gap watchdog (trust.go).
	pause pauseWatch
	// created is when New made this engine: no entry here predates it
	// (see serveFlush).
	created time.Time
	// minoritySince is when this node lost contact with half of the
	// cluster it knew (unix ns; 0: it has not), see inMinority.
	minoritySince atomic.Int64
	// cutOff is set while the failure detector says this node cannot reach
	// most of its peers (trust.go).
	cutOff atomic.Bool
	// farLost is set while sampled pings reach at most half of the
	// members (reachWatchdog, trust.go).
	farLost atomic.Bool
	// events fans membership changes out to Events subscribers.
	events eventHub
	// missed lists members that a write's invalidation could not reach, or
	// that came back after being declared failed: they are told to flush
	// (trust.go).
	missed missedPeers
	// peakMembers and missedWrites are only touched by judgeRingChange, which
	// the cluster never runs concurrently with itself.
	peakMembers  int
	missedWrites bool
	// failed holds members that disappeared without a graceful leave
	// (trust.go).
	failedMu sync.Mutex
	failed   map[string]time.Time

	// ringChangedAt is the time of the last ring change (unix ns).
	ringChangedAt atomic.Int64
	// departed remembers members that left the ring, by name, so that a
	// write still reaches a holder among them (see copyHolders).
	departedMu sync.Mutex
	departed   map[string]cluster.Member
	// settle is how long after a ring change writes still invalidate every
	// member (ns; settleWindow, shorter in tests), see settled.
	settle atomic.Int64
	// prevRing is the ring before the last change (takeover.go).
	prevRing atomic.Pointer[membership.Ring]
	// othersCache is the last ring built by othersRing (takeover.go).
	othersCache atomic.Pointer[membership.Ring]
	// replTags numbers this node's replica messages (replicas.go).
	replTags atomic.Uint64

	// leaving records peers that announced a graceful leave (opLeaving).
	leavingMu sync.Mutex
	leaving   map[string]time.Time

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}

	ext extras // admin server and warmup (extras.go)

	control controlGuard // control.go
}

// New validates cfg (every invalid field is reported, each naming the field
// and keyspace, wrapped in ErrInvalidConfig) and returns an engine that is
// not started yet. It binds no port; Start does.
func New(cfg *Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: *cfg, stopped: make(chan struct{})}
	e.pause.t0 = time.Now()
	e.created = e.pause.t0
	e.settle.Store(int64(settleWindow))
	e.missed.kick = make(chan struct{}, 1)
	// Replica tags start from the clock: a restarted node's tags must
	// exceed those its earlier life sent (replicas.go).
	e.replTags.Store(uint64(time.Now().UnixNano()))
	e.cfg.KeySpaces = append([]keyspace.KeySpace(nil), cfg.KeySpaces...)
	e.log = cfg.Logger
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	obs, err := newObserver(cfg.MeterProvider, cfg.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("%w: observability: %w", ErrInvalidConfig, err)
	}
	e.obs = obs
	table := ksTable{}
	for _, ks := range e.cfg.KeySpaces {
		s, _ := e.cfg.settingsFor(ks) // validated above
		st, err := newKSState(ks, s, e.cfg.replicasFor(ks.Name()), e.log)
		if err != nil {
			table.close()
			return nil, fmt.Errorf("%w: keyspace %q: %w", ErrInvalidConfig, ks.Name(), err)
		}
		table[ks.Name()] = st
	}
	e.keyspaces.Store(&table)
	if obs.meter != nil {
		if obs.reg, err = e.registerInstruments(obs.meter); err != nil {
			table.close()
			return nil, fmt.Errorf("%w: observability: %w", ErrInvalidConfig, err)
		}
	}
	e.base, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// checkState returns nil while the engine is running.
func (e *Engine) checkState() error {
	switch e.state.Load() {
	case stateRunning:
		return nil
	case stateNew, stateStarting:
		return ErrEngineNotStarted
	default:
		return ErrEngineStopped
	}
}

// Addr is the host:port peers reach this node at ("" before Start).
func (e *Engine) Addr() string {
	if e.cl == nil || e.state.Load() < stateRunning {
		return ""
	}
	return e.cl.Self().Addr
}

// NodeName is this node's name in the cluster ("" before Start).
func (e *Engine) NodeName() string {
	if e.cl == nil || e.state.Load() < stateRunning {
		return ""
	}
	return e.cl.Self().Name
}

// Members returns the cluster members in this node's current ring, sorted by
// name (nil before Start).
func (e *Engine) Members() []cluster.Member {
	if e.checkState() != nil {
		return nil
	}
	return e.cl.Ring().Members()
}

// Owner returns the member that owns key in this node's current ring.
func (e *Engine) Owner(key string) (cluster.Member, error) {
	if err := e.checkState(); err != nil {
		return cluster.Member{}, err
	}
	return e.cl.Ring().Owner(key), nil
}

// keyspace resolves a name in the current snapshot.
func (e *Engine) keyspace(name string) (*ksState, error) {
	if st := (*e.keyspaces.Load())[name]; st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrKeySpaceNotFound, name)
}

func (e *Engine) checkKey(key string) error {
	switch {
	case key == "":
		return ErrEmptyKey
	case len(key) > e.cfg.MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), e.cfg.MaxKeyBytes)
	}
	return nil
}
