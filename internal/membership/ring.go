package membership

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"github.com/distcache/distcache/cluster"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Ring defaults, shared by [DefaultConfig], [DefaultLocalConfig] and a zero
// [RingConfig]. The package doc explains how they were chosen.
const (
	// DefaultPartitionCount is the default number of partitions: a prime
	// that leaves at least 16 partitions per member up to 1,000 members.
	DefaultPartitionCount = 16381
	// DefaultVirtualNodes is the default number of virtual nodes per member.
	DefaultVirtualNodes = 256
	// DefaultLoad is the default bounded-load factor.
	DefaultLoad = 1.04
	// MinVirtualNodes is the smallest accepted number of virtual nodes per
	// member; fewer leave the natural spread so uneven that the load bound
	// does most of the placing, and a join moves many more partitions.
	MinVirtualNodes = 10
	// MaxPartitionCount bounds the owner table (int32 indexes, bounded memory).
	MaxPartitionCount = 1 << 20
)

// Member is one node of the cluster as seen by placement and RPC; it is
// the public cluster.Member, which the engine's API returns.
type Member = cluster.Member

// RingConfig configures placement. Every node of a cluster must use the same
// values; [Cluster] enforces it by rejecting members whose config fingerprint
// differs. A zero field means its default.
type RingConfig struct {
	// PartitionCount is the number of partitions keys are hashed into
	// (key -> xxhash64 % PartitionCount). Default [DefaultPartitionCount].
	// It is fixed for the life of a cluster: changing it moves nearly every
	// key. Choose at least 16 partitions per member at the largest size
	// the cluster will reach (the busiest owner then holds at most about
	// 1.06x the mean), preferably a prime; a ring never holds more members
	// than partitions.
	PartitionCount int
	// VirtualNodes is the number of points each member places on the hash
	// ring (not data replicas). More points spread partitions more evenly
	// before the load bound applies, so a join moves fewer partitions, at a
	// build cost of O(members x VirtualNodes x log) per ring change.
	// Default [DefaultVirtualNodes]; at least [MinVirtualNodes].
	VirtualNodes int
	// Load is the bounded-load factor: no member owns more than
	// ceil(floor(PartitionCount/members) * Load) partitions. Default
	// [DefaultLoad]; must be > 1.0. Lower is more even; a join then moves
	// more partitions beyond those the new member takes.
	Load float64
}

// withDefaults returns rc with zero fields replaced by their defaults.
func (rc RingConfig) withDefaults() RingConfig {
	if rc.PartitionCount == 0 {
		rc.PartitionCount = DefaultPartitionCount
	}
	if rc.VirtualNodes == 0 {
		rc.VirtualNodes = DefaultVirtualNodes
	}
	if rc.Load == 0 {
		rc.Load = DefaultLoad
	}
	return rc
}

// Validate reports whether rc (after defaults) can build a ring.
func (rc RingConfig) Validate() error {
	rc = rc.withDefaults()
	switch {
	case rc.PartitionCount < 1 || rc.PartitionCount > MaxPartitionCount:
		return fmt.Errorf("%w: PartitionCount %d out of range [1, %d]", ErrInvalidConfig, rc.PartitionCount, MaxPartitionCount)
	case rc.VirtualNodes < MinVirtualNodes:
		return fmt.Errorf("%w: VirtualNodes %d below %d", ErrInvalidConfig, rc.VirtualNodes, MinVirtualNodes)
	case math.IsNaN(rc.Load) || math.IsInf(rc.Load, 0) || rc.Load <= 1.0:
		return fmt.Errorf("%w: Load %v must be a finite number > 1.0", ErrInvalidConfig, rc.Load)
	}
	return nil
}

// fingerprint identifies the placement function: two nodes with the same
// fingerprint and the same member set compute the same owners.
func (rc RingConfig) fingerprint() uint64 {
	rc = rc.withDefaults()
	var b [8*3 + len(placementHasherID)]byte
	binary.BigEndian.PutUint64(b[0:], uint64(rc.PartitionCount))
	binary.BigEndian.PutUint64(b[8:], uint64(rc.VirtualNodes))
	binary.BigEndian.PutUint64(b[16:], math.Float64bits(rc.Load))
	copy(b[24:], placementHasherID)
	return xxhash.Sum64(b[:])
}

// placementHasherID names the hash function and ring algorithm; change it
// whenever placement changes incompatibly.
const placementHasherID = "xxhash64/bounded-load/vnode-key-name#i"

// Ring is an immutable placement snapshot: the owner of every partition for
// one member set. It is a pure function of the member names and the
// [RingConfig], so every node that sees the same members computes the same
// owners. All methods are safe for concurrent use and take no lock.
type Ring struct {
	cfg         RingConfig
	members     []Member // sorted by name
	owner       []int32  // partition -> index into members
	counts      []int    // member index -> partitions owned
	succ        []int32  // member indexes in xxhash(name) order (replica order)
	succPos     []int32  // member index -> position in succ
	fingerprint uint64
	version     uint64

	tablesMu sync.Mutex // serialises building tables
	// tables[n] caches replicaTable(n) once built.
	tables [maxReplicaTables]atomic.Pointer[[]int32]
}

// ringVersions numbers the rings built in this process.
var ringVersions atomic.Uint64

// Version is unique to this ring among the rings built in this process, and
// larger than the version of every ring built before it. Data derived from
// one ring (a placement decision, a cached copy of a key owned elsewhere)
// can be tagged with it and checked against the current ring's.
func (r *Ring) Version() uint64 { return r.version }

// NewRing builds the ring for members by consistent hashing with bounded
// loads over xxhash64 (the placement of buraksezer/consistent). The order of
// members does not matter. It returns an error, never panics, for a bad config, duplicate or empty names, or more members
// than the partitions can hold. An empty member list gives an empty ring whose
// Owner is the zero Member.
func NewRing(members []Member, cfg RingConfig) (*Ring, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	for i, m := range sorted {
		if m.Name == "" {
			return nil, fmt.Errorf("%w: member with empty name (addr %q)", ErrInvalidRing, m.Addr)
		}
		if i > 0 && sorted[i-1].Name == m.Name {
			return nil, fmt.Errorf("%w: duplicate member name %q", ErrInvalidRing, m.Name)
		}
	}
	n := len(sorted)
	r := &Ring{cfg: cfg, members: sorted, counts: make([]int, n), version: ringVersions.Add(1)}
	r.fingerprint = ringFingerprint(cfg, sorted)
	if n == 0 {
		return r, nil
	}
	if n > cfg.PartitionCount {
		return nil, fmt.Errorf("%w: %d members, %d partitions", ErrTooManyMembers, n, cfg.PartitionCount)
	}
	// Every member is capped at ceil(floor(P/M) * Load) partitions; reject
	// sets that the caps cannot cover.
	capacity := math.Ceil(float64(cfg.PartitionCount/n) * cfg.Load)
	if capacity*float64(n) < float64(cfg.PartitionCount) {
		return nil, fmt.Errorf("%w: %d members x %v partitions each < %d partitions (raise Load or PartitionCount)",
			ErrTooManyMembers, n, capacity, cfg.PartitionCount)
	}

	names := make([]string, n)
	for i, m := range sorted {
		names[i] = m.Name
	}
	owners, err := placePartitions(names, cfg)
	if err != nil {
		return nil, err
	}
	r.owner = owners
	for _, idx := range owners {
		r.counts[idx]++
	}

	// Successor order: members sorted by xxhash(name), as consistent's
	// GetClosestN does, with ties broken by name for determinism.
	r.succ = make([]int32, n)
	for i := range r.succ {
		r.succ[i] = int32(i)
	}
	hashes := make([]uint64, n)
	for i, m := range sorted {
		hashes[i] = xxhash.Sum64String(m.Name)
	}
	slices.SortFunc(r.succ, func(a, b int32) int {
		if c := cmp.Compare(hashes[a], hashes[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	r.succPos = make([]int32, n)
	for pos, idx := range r.succ {
		r.succPos[idx] = int32(pos)
	}
	return r, nil
}

// ringFingerprint hashes the ring config and the sorted member names.
func ringFingerprint(cfg RingConfig, sorted []Member) uint64 {
	d := xxhash.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], cfg.fingerprint())
	_, _ = d.Write(b[:])
	for _, m := range sorted {
		_, _ = d.WriteString(m.Name)
		_, _ = d.Write([]byte{0})
	}
	return d.Sum64()
}

// partitionOf returns the partition of key: xxhash64(key) % PartitionCount.
func (r *Ring) partitionOf(key string) int {
	return int(xxhash.Sum64String(key) % uint64(r.cfg.PartitionCount))
}

// Owner returns the member that owns key, or the zero Member on an empty
// ring. It hashes the key and indexes a table: no lock, no allocation.
func (r *Ring) Owner(key string) Member {
	if len(r.owner) == 0 {
		return Member{}
	}
	return r.members[r.owner[xxhash.Sum64String(key)%uint64(len(r.owner))]]
}

// ownerOfPartition returns the owner of partition p, or the zero Member when
// the ring is empty or p is out of range.
func (r *Ring) ownerOfPartition(p int) Member {
	if p < 0 || p >= len(r.owner) {
		return Member{}
	}
	return r.members[r.owner[p]]
}

// Replicas returns up to n distinct members responsible for key: the owner
// first, then, one at a time, the member that would own key if the members
// already chosen were gone (the owner of key's partition in the ring built
// without them). So when a key's owner fails, the ring rebuilt without it
// gives the key to the first replica, which already holds it; and every node
// with the same members computes the same set (a pure function of the names
// and the config). It returns fewer than n when the ring has fewer members,
// and nil for n <= 0 or an empty ring.
//
// The first call for a given n runs the placement again without the chosen
// members (once per distinct set left out: once per member for n = 2, about
// a millisecond each with the default config) and keeps the table; later
// calls index it and allocate only the result. Callers that need it fast
// after a ring change should make that first call in the background.
func (r *Ring) Replicas(key string, n int) []Member {
	if len(r.owner) == 0 {
		return nil
	}
	return r.replicasOfPartition(int(xxhash.Sum64String(key)%uint64(len(r.owner))), n)
}

// replicasOfPartition is [Ring.Replicas] for partition p; nil when p is out of range.
func (r *Ring) replicasOfPartition(p, n int) []Member {
	if p < 0 || p >= len(r.owner) || n <= 0 {
		return nil
	}
	n = min(n, len(r.members))
	if n == 1 {
		return []Member{r.members[r.owner[p]]}
	}
	t := r.replicaTable(n)
	out := make([]Member, n)
	for i := range n {
		out[i] = r.members[t[p*n+i]]
	}
	return out
}

// maxReplicaTables bounds the replica counts whose table is kept; larger
// counts are computed on every call.
const maxReplicaTables = 8

// replicaTable returns, for every partition, the indexes of its n replicas
// (n*p to n*p+n-1), building it on first use.
func (r *Ring) replicaTable(n int) []int32 {
	if n < len(r.tables) {
		if t := r.tables[n].Load(); t != nil {
			return *t
		}
	}
	r.tablesMu.Lock()
	defer r.tablesMu.Unlock()
	if n < len(r.tables) {
		if t := r.tables[n].Load(); t != nil {
			return *t
		}
	}
	names := make([]string, len(r.members))
	for i, m := range r.members {
		names[i] = m.Name
	}
	points := ringPoints(names, r.cfg)
	subs := map[string][]int32{}
	t := make([]int32, len(r.owner)*n)
	chosen := make([]int32, 0, n)
	for p := range r.owner {
		chosen = append(chosen[:0], r.owner[p])
		for len(chosen) < n {
			chosen = append(chosen, r.nextReplica(p, chosen, points, subs))
		}
		copy(t[p*n:], chosen)
	}
	if n < len(r.tables) {
		r.tables[n].Store(&t)
	}
	return t
}

// nextReplica is the owner of partition p in the ring without the members
// chosen so far: the placement run again on points without theirs (cached
// in subs by the set left out). Should it fail (a config at its limits),
// the next member in name-hash order not chosen yet stands in:
// deterministic, so still identical on every node.
func (r *Ring) nextReplica(p int, chosen []int32, points []vnode, subs map[string][]int32) int32 {
	left := slices.Clone(chosen)
	slices.Sort(left)
	var id []byte
	for _, i := range left {
		id = binary.BigEndian.AppendUint32(id, uint32(i))
	}
	owners, ok := subs[string(id)]
	if !ok {
		rest := make([]vnode, 0, len(points))
		for _, v := range points {
			if !slices.Contains(left, v.member) {
				rest = append(rest, v)
			}
		}
		owners, _ = placeOn(rest, len(r.members)-len(left), r.cfg) // nil on error
		subs[string(id)] = owners
	}
	if owners != nil {
		return owners[p]
	}
	pos := int(r.succPos[chosen[len(chosen)-1]])
	for k := 1; ; k++ {
		c := r.succ[(pos+k)%len(r.succ)]
		if !slices.Contains(chosen, c) {
			return c
		}
	}
}

// Members returns a fresh copy of the ring's members, sorted by name.
func (r *Ring) Members() []Member { return slices.Clone(r.members) }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Contains reports whether a member named name is on the ring.
func (r *Ring) Contains(name string) bool {
	_, ok := r.lookup(name)
	return ok
}

// Member returns the ring's member named name.
func (r *Ring) Member(name string) (Member, bool) {
	i, ok := r.lookup(name)
	if !ok {
		return Member{}, false
	}
	return r.members[i], true
}

func (r *Ring) lookup(name string) (int, bool) {
	return slices.BinarySearchFunc(r.members, name, func(m Member, n string) int { return cmp.Compare(m.Name, n) })
}

// Config returns the ring's config with defaults applied.
func (r *Ring) Config() RingConfig { return r.cfg }

// partitionCount returns the number of partitions.
func (r *Ring) partitionCount() int { return r.cfg.PartitionCount }

// Distribution returns how many partitions each member owns, for diagnostics.
func (r *Ring) Distribution() map[string]int {
	out := make(map[string]int, len(r.members))
	for i, m := range r.members {
		out[m.Name] = r.counts[i]
	}
	return out
}

// Fingerprint identifies the placement: a hash of the ring config and the
// sorted member names (addresses are not part of it, as they do not affect
// placement). Two rings with equal fingerprints place every key alike.
func (r *Ring) Fingerprint() uint64 { return r.fingerprint }

// sameMembers reports whether r holds exactly members (sorted by name),
// addresses included.
func (r *Ring) sameMembers(sorted []Member) bool {
	return r != nil && slices.Equal(r.members, sorted)
}
