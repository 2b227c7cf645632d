package engine

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/membership"
)

// WithAdminServer starts an admin HTTP server on addr ("host:port"; port 0
// picks a free one, see AdminAddr) when the engine starts, with the other
// admin settings at their defaults or as set by WithAdminConfig. An empty
// addr starts no server. See package admin for the endpoints.
func WithAdminServer(addr string) Option {
	return func(c *Config) {
		if !c.extras.adminSet {
			c.extras.admin, c.extras.adminSet = admin.DefaultConfig(), true
		}
		c.extras.admin.ListenAddr = addr
	}
}

// WithAdminConfig sets every admin setting (base path, TLS, timeouts); a
// server is started when cfg.ListenAddr is set. It replaces an earlier
// WithAdminServer's address; a later WithAdminServer replaces its.
func WithAdminConfig(cfg admin.Config) Option {
	return func(c *Config) { c.extras.admin, c.extras.adminSet = cfg, true }
}

// AdminHandler returns the admin endpoints of this engine (see package
// admin) under the configured base path (default admin.DefaultBasePath),
// for mounting on your own mux: mux.Handle(admin.DefaultBasePath+"/",
// e.AdminHandler()), behind the configured admin.Config.BearerToken when
// set. It works with or without WithAdminServer, before
// Start (reporting "not started") and after Stop.
func (e *Engine) AdminHandler() http.Handler {
	e.ext.handlerOnce.Do(func() {
		base := admin.DefaultBasePath
		if e.cfg.extras.adminSet {
			base = e.cfg.extras.admin.BasePath
		}
		e.ext.handler = admin.RequireBearer(e.cfg.extras.admin.BearerToken, admin.NewHandler(adminSource{e}, base))
	})
	return e.ext.handler
}

// AdminAddr returns the admin server's bound address, or "" when no server
// runs (none configured, not started yet, or stopped).
func (e *Engine) AdminAddr() string {
	if srv := e.ext.server.Load(); srv != nil {
		return srv.Addr()
	}
	return ""
}

// adminSource implements admin.Source for an engine.
type adminSource struct{ e *Engine }

var _ admin.Source = adminSource{}

// adminHotKeys is how many hot keys the admin endpoints show per keyspace.
const adminHotKeys = 20

// startedCluster returns the cluster once Start has created it (reading
// e.cl only after the state moved past starting keeps it race-free).
func (e *Engine) startedCluster() *membership.Cluster {
	if s := e.state.Load(); s == stateNew || s == stateStarting {
		return nil
	}
	return e.cl
}

// Peers lists the members of this node's ring.
func (s adminSource) Peers() []admin.Peer {
	cl := s.e.startedCluster()
	if cl == nil {
		return nil
	}
	ring := cl.Ring()
	dist := ring.Distribution()
	self := cl.Self().Name
	members := ring.Members()
	out := make([]admin.Peer, 0, len(members))
	for _, m := range members {
		out = append(out, admin.Peer{Name: m.Name, Addr: m.Addr, IsSelf: m.Name == self, Partitions: dist[m.Name]})
	}
	return out
}

// KeySpaces reports every keyspace's settings and counters on this node.
func (s adminSource) KeySpaces() []admin.KeySpace {
	table := *s.e.keyspaces.Load()
	w := s.e.ext.warm.Load()
	out := make([]admin.KeySpace, 0, len(table))
	for _, name := range table.names() {
		st := table[name]
		// Counters only: this endpoint is polled, and counting entries
		// walks the store, which would make polling slow every Get.
		// Entries comes from a count at most adminEntriesEvery old.
		snap := st.counters()
		snap.Entries = st.adminEntries.get(st.store)
		set := st.settings
		ks := admin.KeySpace{
			Name:           name,
			MaxBytes:       set.MaxBytes,
			DefaultTTL:     admin.Duration(set.DefaultTTL),
			ReadTimeout:    admin.Duration(set.ReadTimeout),
			WriteTimeout:   admin.Duration(set.WriteTimeout),
			WarmKeys:       append([]string{}, set.WarmKeys...),
			MainCacheBytes: snap.UsedBytes,
			HotCacheBytes:  snap.NearUsedBytes,
			Stats:          adminStats(snap),
			Entries:        snap.Entries,
			NegativeTTL:    admin.Duration(set.NegativeTTL),
			MaxStale:       admin.Duration(set.MaxStale),
			NearCacheTTL:   admin.Duration(set.NearCacheTTL),
		}
		if w != nil {
			for _, h := range w.trackers[name].Hot(adminHotKeys, 1) {
				ks.HotKeys = append(ks.HotKeys, admin.HotKey{Key: h.Key, Hits: h.Hits})
			}
			if c := w.counters[name]; c != nil {
				ks.Warmup = &admin.WarmupStats{Loaded: c.loaded.Load(), Requested: c.requested.Load(), Cached: c.cached.Load(), Failed: c.failed.Load()}
			}
		}
		out = append(out, ks)
	}
	return out
}

// adminStats maps the engine's counters to the reference (groupcache)
// names, plus the finer ones. See admin.KeySpaceStats for each meaning.
func adminStats(s KeySpaceStats) *admin.KeySpaceStats {
	gets := s.Gets + s.Served
	localErrs := s.FetchErrors + s.RateLimited + s.CircuitOpen
	return &admin.KeySpaceStats{
		Gets:               gets,
		CacheHits:          s.Hits + s.NearHits,
		PeerLoads:          max(s.Forwarded-s.ForwardErrors, 0),
		PeerErrors:         s.ForwardErrors,
		Loads:              max(gets-s.Hits-s.NearHits, 0),
		LoadsDeduped:       s.Fetches + s.Forwarded,
		LocalLoads:         max(s.Fetches-localErrs, 0),
		LocalLoadErrs:      localErrs,
		RemoveKeysRequests: s.Deletes,
		RemovedKeys:        s.Deletes,
		ServerRequests:     s.Served,
		Misses:             s.Misses,
		NegativeHits:       s.NegativeHits,
		Fetches:            s.Fetches,
		FetchErrors:        s.FetchErrors,
		Coalesced:          s.FetchesCoalesced,
		Forwarded:          s.Forwarded,
		ForwardsCoalesced:  s.ForwardsCoalesced,
		Degraded:           s.Degraded,
		StaleServed:        s.StaleServed,
		NearHits:           s.NearHits,
		Puts:               s.Puts,
		Deletes:            s.Deletes,
		Rejected:           s.Rejected,
		RateLimited:        s.RateLimited,
		CircuitOpen:        s.CircuitOpen,
		BreakerState:       s.BreakerState,
		GetP99:             admin.Duration(s.GetP99),
		HandedOff:          s.HandedOff,
		HandoffsTaken:      s.HandoffsTaken,
		ReplicaEntries:     s.ReplicaEntries,
		ReplicaWrites:      s.ReplicaWrites,
		ReplicaReads:       s.ReplicaReads,
		Repairs:            s.Repairs,
	}
}

// Health is nil until Stop begins.
func (s adminSource) Health() error {
	if st := s.e.state.Load(); st == stateStopping || st == stateStopped {
		return ErrEngineStopped
	}
	return nil
}

// Ready is nil while the engine is running, on its own ring (it has not
// begun to leave) and with at least MinimumPeersQuorum members.
func (s adminSource) Ready() error {
	if err := s.e.checkState(); err != nil {
		return err
	}
	ring, self := s.e.cl.Ring(), s.e.cl.Self().Name
	if !ring.Contains(self) {
		return fmt.Errorf("distcache: %s is not on its ring (leaving)", self)
	}
	if n, q := ring.Len(), s.e.cfg.MinimumPeersQuorum; n < q {
		return fmt.Errorf("%w: %d of %d members", ErrClusterQuorum, n, q)
	}
	return nil
}

// adminEntriesEvery bounds how often the admin endpoints count a store's
// entries (a walk of the store): at most once per period per keyspace,
// however often they are polled.
const adminEntriesEvery = time.Second

// entryCount caches a store's entry count for the admin endpoints.
type entryCount struct {
	mu sync.Mutex // guards the fields below; one walk at a time
	at time.Time
	n  int64
}

func (c *entryCount) get(s *cache.Store) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= adminEntriesEvery {
		c.n = s.Stats().Entries
		c.at = time.Now()
	}
	return c.n
}
