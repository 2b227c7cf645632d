package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Source is the node the admin endpoints report on. The engine implements
// it (engine.AdminHandler); implementations must be safe for concurrent use
// and return fresh slices.
type Source interface {
	// Peers returns the cluster members in this node's current ring.
	Peers() []Peer
	// KeySpaces returns a snapshot of every keyspace of this node.
	KeySpaces() []KeySpace
	// Health returns nil while the node is alive (starting or running) and
	// an error saying why not otherwise.
	Health() error
	// Ready returns nil while the node serves traffic (running and joined)
	// and an error saying why not otherwise.
	Ready() error
	// Cluster gathers every member's counters: this node's locally, the
	// others' from them, within ctx and a deadline per member; a member
	// that does not answer is listed with Reachable false. Derived fields
	// (ratios, totals) are left to the handler.
	Cluster(ctx context.Context) ClusterView
}

// Peer is one cluster member as GET {base}/peers reports it.
type Peer struct {
	// Name is the member's stable node name.
	Name string `json:"name"`
	// Addr is the host:port of its gossip and data port.
	Addr string `json:"addr"`
	// IsSelf is true for the node answering the request.
	IsSelf bool `json:"is_self"`
	// Partitions is how many ring partitions the member owns.
	Partitions int `json:"partitions"`
}

// KeySpace is one keyspace as GET {base}/keyspaces reports it: the
// reference fields first, then this implementation's additions.
type KeySpace struct {
	Name string `json:"name"`
	// MaxBytes is the per-node store budget.
	MaxBytes     int64    `json:"max_bytes"`
	DefaultTTL   Duration `json:"default_ttl"`
	ReadTimeout  Duration `json:"read_timeout"`
	WriteTimeout Duration `json:"write_timeout"`
	// WarmKeys are the keys warmup always prefetches (never null).
	WarmKeys []string `json:"warm_keys"`
	// MainCacheBytes is the store's current size on this node.
	MainCacheBytes int64 `json:"main_cache_bytes"`
	// HotCacheBytes is the size of the near cache: copies of keys owned by
	// other nodes (0 when it is off, the default; see the engine's
	// WithKeySpaceNearCache).
	HotCacheBytes int64 `json:"hot_cache_bytes"`
	// Stats are the keyspace's counters on this node.
	Stats *KeySpaceStats `json:"stats,omitempty"`

	// Entries is the number of entries in the store on this node.
	Entries int64 `json:"entries"`
	// NegativeTTL and MaxStale are the negative-cache and stale-on-error
	// windows (0s: off).
	NegativeTTL Duration `json:"negative_ttl"`
	MaxStale    Duration `json:"max_stale"`
	// NearCacheTTL is the near cache's time to live (0s: off).
	NearCacheTTL Duration `json:"near_cache_ttl"`
	// HotKeys are the most requested keys recently seen by this node (only
	// with warmup on), most requested first.
	HotKeys []HotKey `json:"hot_keys,omitempty"`
	// Warmup are this keyspace's warmup counters (only with warmup on).
	Warmup *WarmupStats `json:"warmup,omitempty"`
}

// KeySpaceStats are a keyspace's counters on one node. The first ten
// fields keep the reference (groupcache) names and meanings; the rest are
// this implementation's finer counters.
type KeySpaceStats struct {
	// Gets counts every Get on this node: local calls and requests served
	// for peers.
	Gets int64 `json:"gets"`
	// CacheHits counts lookups answered from this node's store.
	CacheHits int64 `json:"cache_hits"`
	// PeerLoads counts keys obtained from their owner on another node.
	PeerLoads int64 `json:"peer_loads"`
	// PeerErrors counts requests to an owner that failed to reach it.
	PeerErrors int64 `json:"peer_errors"`
	// Loads counts gets that missed this node's store (Gets - CacheHits).
	Loads int64 `json:"loads"`
	// LoadsDeduped counts loads left after coalescing: DataSource fetches
	// plus requests sent to owners.
	LoadsDeduped int64 `json:"loads_deduped"`
	// LocalLoads and LocalLoadErrs count DataSource fetches on this node
	// that succeeded (or found nothing) and that failed (including those
	// refused by the rate limiter or the circuit breaker).
	LocalLoads    int64 `json:"local_loads"`
	LocalLoadErrs int64 `json:"local_load_errs"`
	// RemoveKeysRequests and RemovedKeys count key removals on this node
	// (deletes, and entries dropped after they moved to another owner).
	RemoveKeysRequests int64 `json:"remove_keys_requests"`
	RemovedKeys        int64 `json:"removed_keys"`

	// ServerRequests counts requests served for peers.
	ServerRequests int64 `json:"server_requests"`
	// Misses and NegativeHits are store lookups that missed and hits on a
	// remembered "not found".
	Misses       int64 `json:"misses"`
	NegativeHits int64 `json:"negative_hits"`
	// Fetches and FetchErrors count DataSource calls and their failures
	// ("not found" excluded); Coalesced the callers that joined a fetch
	// already in flight.
	Fetches     int64 `json:"fetches"`
	FetchErrors int64 `json:"fetch_errors"`
	Coalesced   int64 `json:"coalesced"`
	// Forwarded counts requests sent to owners, ForwardsCoalesced callers
	// that joined one in flight, Degraded local loads made because the owner
	// could not serve.
	Forwarded         int64 `json:"forwarded"`
	ForwardsCoalesced int64 `json:"forwards_coalesced"`
	Degraded          int64 `json:"degraded"`
	// StaleServed counts expired values served because a refetch failed.
	StaleServed int64 `json:"stale_served"`
	// NearHits counts Gets of keys owned elsewhere served from the near
	// cache (included in CacheHits).
	NearHits int64 `json:"near_hits"`
	// Puts, Deletes and Rejected count writes applied, removals, and writes
	// refused by a full store.
	Puts     int64 `json:"puts"`
	Deletes  int64 `json:"deletes"`
	Rejected int64 `json:"rejected"`
	// RateLimited and CircuitOpen count fetches refused by the protections;
	// BreakerState is "closed", "half-open" or "open" ("" without breaker).
	RateLimited  int64  `json:"rate_limited"`
	CircuitOpen  int64  `json:"circuit_open"`
	BreakerState string `json:"breaker_state,omitempty"`
	// HandedOff counts entries this node sent to their new owner (a ring
	// change, a graceful leave); HandoffsTaken those it received and kept.
	HandedOff     int64 `json:"handed_off"`
	HandoffsTaken int64 `json:"handoffs_taken"`
	// With replicas: ReplicaEntries counts the copies this node holds for
	// other owners; ReplicaWrites writes applied to them, ReplicaReads Gets
	// served from them (their owner was unreachable), Repairs entries this
	// node pushed to replicas as owner.
	ReplicaEntries int64 `json:"replica_entries"`
	ReplicaWrites  int64 `json:"replica_writes"`
	ReplicaReads   int64 `json:"replica_reads"`
	Repairs        int64 `json:"repairs"`
	// GetP99 is the 99th percentile latency of Gets on this node (0s: not
	// measured).
	GetP99 Duration `json:"get_p99"`
	// DataSourceAvoided is 1 − Fetches ÷ Gets (see the function of that
	// name), filled by the handler; null before the first get.
	DataSourceAvoided *float64 `json:"datasource_avoided"`
}

// HotKey is a key and its estimated recent hits.
type HotKey struct {
	Key  string `json:"key"`
	Hits int64  `json:"hits"`
}

// WarmupStats count a keyspace's warmup prefetches on this node.
type WarmupStats struct {
	// Loaded counts keys this node loaded for itself; Requested keys it
	// asked their new owner to load; Cached prefetches skipped because the
	// key was already in the store; Failed prefetches that failed.
	Loaded    int64 `json:"loaded"`
	Requested int64 `json:"requested"`
	Cached    int64 `json:"cached"`
	Failed    int64 `json:"failed"`
}

// Duration is a time.Duration that travels in JSON as its String form
// ("5m0s"), as the reference API does.
type Duration time.Duration

// String returns the time.Duration form.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a string such as "250ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a duration string ("1m30s") or a number of
// nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("admin: bad duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("admin: duration must be a string or an integer, got %s", b)
	}
	*d = Duration(n)
	return nil
}
