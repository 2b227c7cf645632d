package membership

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMembers(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Name: fmt.Sprintf("node-%02d", i), Addr: fmt.Sprintf("10.0.0.%d:7946", i+1)}
	}
	return ms
}

func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	return keys
}

func TestRingDeterministicAcrossMemberOrder(t *testing.T) {
	members := testMembers(7)
	// Names that collide on consistent's virtual-node keys ("a1"+"0" ==
	// "a"+"10") must not make the result depend on insertion order.
	members = append(members, Member{Name: "a", Addr: "x:1"}, Member{Name: "a1", Addr: "x:2"})
	want, err := NewRing(members, RingConfig{})
	require.NoError(t, err)
	keys := testKeys(10_000)

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5 {
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		got, err := NewRing(shuffled, RingConfig{})
		require.NoError(t, err)
		require.Equal(t, want.Fingerprint(), got.Fingerprint(), "shuffle %d", i)
		for _, k := range keys {
			require.Equal(t, want.Owner(k), got.Owner(k), "shuffle %d key %s", i, k)
		}
	}
}

func TestRingAddressesDoNotMovePartitions(t *testing.T) {
	members := testMembers(5)
	a, err := NewRing(members, RingConfig{})
	require.NoError(t, err)
	moved := slices.Clone(members)
	moved[2].Addr = "10.9.9.9:1234"
	b, err := NewRing(moved, RingConfig{})
	require.NoError(t, err)
	assert.Equal(t, a.Fingerprint(), b.Fingerprint())
	for p := range a.partitionCount() {
		assert.Equal(t, a.ownerOfPartition(p).Name, b.ownerOfPartition(p).Name)
	}
	assert.Equal(t, "10.9.9.9:1234", b.ownerOfPartition(partitionOwnedBy(t, b, moved[2].Name)).Addr)
}

func partitionOwnedBy(t *testing.T, r *Ring, name string) int {
	t.Helper()
	for p := range r.partitionCount() {
		if r.ownerOfPartition(p).Name == name {
			return p
		}
	}
	t.Fatalf("%s owns no partition", name)
	return -1
}

func TestRingDistributionWithinLoadBound(t *testing.T) {
	for _, tc := range []struct {
		members    int
		partitions int
		load       float64
	}{
		{1, 271, 1.25}, {2, 271, 1.25}, {3, 271, 1.25}, {5, 271, 1.25}, {10, 271, 1.25},
		{27, 271, 1.25}, {50, 271, 1.25}, {31, 31, 1.25}, {11, 1021, 1.1}, {50, 4099, 1.05},
	} {
		t.Run(fmt.Sprintf("m=%d/p=%d/load=%v", tc.members, tc.partitions, tc.load), func(t *testing.T) {
			r, err := NewRing(testMembers(tc.members), RingConfig{PartitionCount: tc.partitions, Load: tc.load})
			require.NoError(t, err)
			bound := int(math.Ceil(float64(tc.partitions/tc.members) * tc.load))
			dist := r.Distribution()
			require.Len(t, dist, tc.members)
			total := 0
			for name, n := range dist {
				assert.LessOrEqual(t, n, bound, "member %s", name)
				total += n
			}
			assert.Equal(t, tc.partitions, total)
			for _, k := range testKeys(1000) {
				p := r.partitionOf(k)
				require.Equal(t, r.ownerOfPartition(p), r.Owner(k))
			}
		})
	}
}

func TestNewRingErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []Member
		cfg     RingConfig
		want    error
	}{
		{"more members than partitions", testMembers(12), RingConfig{PartitionCount: 11}, ErrTooManyMembers},
		{"272 members 271 partitions", testMembers(272), RingConfig{PartitionCount: 271}, ErrTooManyMembers},
		{"load 1.0", testMembers(3), RingConfig{Load: 1.0}, ErrInvalidConfig},
		{"load below 1", testMembers(3), RingConfig{Load: 0.5}, ErrInvalidConfig},
		{"load negative", testMembers(3), RingConfig{Load: -2}, ErrInvalidConfig},
		{"load NaN", testMembers(3), RingConfig{Load: math.NaN()}, ErrInvalidConfig},
		{"load Inf", testMembers(3), RingConfig{Load: math.Inf(1)}, ErrInvalidConfig},
		{"virtual nodes 1", testMembers(3), RingConfig{VirtualNodes: 1}, ErrInvalidConfig},
		{"virtual nodes 9", testMembers(3), RingConfig{VirtualNodes: 9}, ErrInvalidConfig},
		{"negative partitions", testMembers(3), RingConfig{PartitionCount: -1}, ErrInvalidConfig},
		{"huge partitions", testMembers(3), RingConfig{PartitionCount: MaxPartitionCount + 1}, ErrInvalidConfig},
		{"duplicate names", []Member{{Name: "a"}, {Name: "b"}, {Name: "a", Addr: "other"}}, RingConfig{}, ErrInvalidRing},
		{"empty name", []Member{{Name: "a"}, {Name: ""}}, RingConfig{}, ErrInvalidRing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				r   *Ring
				err error
			)
			require.NotPanics(t, func() { r, err = NewRing(tc.members, tc.cfg) })
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, r)
		})
	}
}

// A member set whose points cannot place every partition (a single point,
// which NewRing's validation otherwise prevents) is an error, not a panic.
func TestPlacePartitionsNoRoom(t *testing.T) {
	var err error
	require.NotPanics(t, func() {
		_, err = placePartitions([]string{"a"}, RingConfig{PartitionCount: 5, VirtualNodes: 1, Load: 1.5})
	})
	require.ErrorIs(t, err, ErrInvalidRing)
	require.ErrorContains(t, err, "not enough room")
}

func TestRingEmpty(t *testing.T) {
	r, err := NewRing(nil, RingConfig{})
	require.NoError(t, err)
	assert.Equal(t, 0, r.Len())
	assert.Equal(t, Member{}, r.Owner("k"))
	assert.Equal(t, Member{}, r.ownerOfPartition(0))
	assert.Nil(t, r.Replicas("k", 3))
	assert.Empty(t, r.Members())
	assert.Empty(t, r.Distribution())
	assert.False(t, r.Contains("a"))
	assert.Equal(t, r.partitionOf("k"), r.partitionOf("k"))
	assert.Less(t, r.partitionOf("k"), DefaultPartitionCount)
}

func TestRingAccessors(t *testing.T) {
	members := testMembers(5)
	r, err := NewRing(members, RingConfig{})
	require.NoError(t, err)
	assert.Equal(t, 5, r.Len())
	assert.Equal(t, members, r.Members())
	got := r.Members()
	got[0].Name = "mutated"
	assert.Equal(t, members[0], r.Members()[0], "Members returns a copy")
	assert.True(t, r.Contains("node-03"))
	assert.False(t, r.Contains("node-99"))
	m, ok := r.Member("node-03")
	assert.True(t, ok)
	assert.Equal(t, members[3], m)
	assert.Equal(t, Member{}, r.ownerOfPartition(-1))
	assert.Equal(t, Member{}, r.ownerOfPartition(DefaultPartitionCount))
	assert.Equal(t, RingConfig{PartitionCount: DefaultPartitionCount, VirtualNodes: DefaultVirtualNodes, Load: DefaultLoad}, r.Config())

	other, err := NewRing(testMembers(4), RingConfig{})
	require.NoError(t, err)
	assert.NotEqual(t, r.Fingerprint(), other.Fingerprint())
	otherCfg, err := NewRing(members, RingConfig{PartitionCount: 1021})
	require.NoError(t, err)
	assert.NotEqual(t, r.Fingerprint(), otherCfg.Fingerprint())
}

func TestRingReplicas(t *testing.T) {
	r, err := NewRing(testMembers(5), RingConfig{})
	require.NoError(t, err)
	for _, k := range testKeys(500) {
		reps := r.Replicas(k, 3)
		require.Len(t, reps, 3)
		require.Equal(t, r.Owner(k), reps[0])
		names := []string{reps[0].Name, reps[1].Name, reps[2].Name}
		slices.Sort(names)
		require.Len(t, slices.Compact(names), 3, "replicas are distinct")
	}
	assert.Len(t, r.Replicas("k", 9), 5, "capped at the member count")
	assert.Nil(t, r.Replicas("k", 0))
	assert.Nil(t, r.replicasOfPartition(-1, 2))
}

// When a key's owner fails, the ring rebuilt without it gives the key to
// its first replica, and replica sets are a function of the member set.
func TestRingReplicasTakeOver(t *testing.T) {
	members := testMembers(5)
	r, err := NewRing(members, RingConfig{})
	require.NoError(t, err)
	rev := slices.Clone(members)
	slices.Reverse(rev)
	again, err := NewRing(rev, RingConfig{})
	require.NoError(t, err)
	for _, k := range testKeys(300) {
		reps := r.Replicas(k, 3)
		require.Equal(t, reps, again.Replicas(k, 3), "same members, same replicas")
		var rest []Member
		for _, m := range members {
			if m.Name != reps[0].Name {
				rest = append(rest, m)
			}
		}
		without, err := NewRing(rest, RingConfig{})
		require.NoError(t, err)
		require.Equal(t, reps[1], without.Owner(k), "the first replica owns %q once its owner is gone", k)
		require.Equal(t, reps[1:], without.Replicas(k, 2), "the replica set survives the owner's loss")
	}
}

func TestRingOwnerDoesNotAllocate(t *testing.T) {
	r, err := NewRing(testMembers(10), RingConfig{})
	require.NoError(t, err)
	var sink Member
	allocs := testing.AllocsPerRun(1000, func() { sink = r.Owner("some-key-of-moderate-length") })
	assert.Zero(t, allocs)
	_ = sink
}

func BenchmarkRingOwner(b *testing.B) {
	keys := testKeys(1024)
	for _, n := range []int{3, 10, 50} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			r, err := NewRing(testMembers(n), RingConfig{})
			require.NoError(b, err)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = r.Owner(keys[i&1023])
				i++
			}
		})
	}
}

func BenchmarkRingOwnerParallel(b *testing.B) {
	r, err := NewRing(testMembers(10), RingConfig{})
	require.NoError(b, err)
	keys := testKeys(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_ = r.Owner(keys[i&1023])
			i++
		}
	})
}

func BenchmarkNewRing(b *testing.B) {
	for _, n := range []int{3, 10, 100, 1000} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			members := ringTestMembers(n, true, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewRing(members, RingConfig{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Every ring gets a new, larger version, whatever its members.
func TestRingVersion(t *testing.T) {
	members := []Member{{Name: "a", Addr: "a:1"}, {Name: "b", Addr: "b:1"}}
	r1, err := NewRing(members, RingConfig{})
	require.NoError(t, err)
	r2, err := NewRing(members, RingConfig{})
	require.NoError(t, err)
	empty, err := NewRing(nil, RingConfig{})
	require.NoError(t, err)
	require.Positive(t, r1.Version())
	require.Greater(t, r2.Version(), r1.Version(), "the same members, a new ring")
	require.Greater(t, empty.Version(), r2.Version())
}

// ringTestMembers returns n members named as real nodes are: "node-1",
// "node-2"… or, with uuids, random UUID-like names drawn from seed.
func ringTestMembers(n int, uuids bool, seed uint64) []Member {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	ms := make([]Member, n)
	for i := range ms {
		name := "node-" + strconv.Itoa(i+1)
		if uuids {
			name = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12),
				0x8000|rng.IntN(1<<14), rng.Uint64()&(1<<48-1))
		}
		ms[i] = Member{Name: name, Addr: fmt.Sprintf("127.0.0.1:%d", 7000+i)}
	}
	return ms
}

// With the default config the busiest owner holds at most 36 % of the
// partitions and of a 100k-key sample at 3 members, and at most 1.15x the
// mean at 9 to 100; the ring does not depend on the order members are given
// in; and a join moves few partitions beyond the ideal 1/(N+1) share the
// new member takes.
func TestRingBalanceAndJoinMovement(t *testing.T) {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	for _, tc := range []struct {
		members   int
		maxShare  float64 // of the whole, by partitions and by keys
		maxMoveOf float64 // partitions moved by a join / (P/(N+1))
	}{
		{3, 0.36, 1.2},
		{9, 1.15 / 9, 1.2},
		{27, 1.15 / 27, 1.2},
		{100, 1.15 / 100, 1.5},
	} {
		for _, uuids := range []bool{false, true} {
			t.Run(fmt.Sprintf("n=%d/uuids=%v", tc.members, uuids), func(t *testing.T) {
				all := ringTestMembers(tc.members+1, uuids, 1)
				members := all[:tc.members]
				r, err := NewRing(members, RingConfig{})
				require.NoError(t, err)
				p := r.partitionCount()

				busiest := slices.Max(r.counts)
				assert.LessOrEqual(t, float64(busiest)/float64(p), tc.maxShare, "busiest owner by partitions")
				perMember := map[string]int{}
				for _, k := range keys {
					perMember[r.Owner(k).Name]++
				}
				busiestKeys := 0
				for _, c := range perMember {
					busiestKeys = max(busiestKeys, c)
				}
				assert.LessOrEqual(t, float64(busiestKeys)/float64(len(keys)), tc.maxShare, "busiest owner by keys")

				shuffled := slices.Clone(members)
				rand.New(rand.NewPCG(2, 3)).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
				again, err := NewRing(shuffled, RingConfig{})
				require.NoError(t, err)
				for q := range p {
					require.Equal(t, r.ownerOfPartition(q), again.ownerOfPartition(q), "partition %d", q)
				}

				joined, err := NewRing(all, RingConfig{})
				require.NoError(t, err)
				moved, toNew := 0, 0
				newcomer := all[tc.members].Name
				for q := range p {
					if o := joined.ownerOfPartition(q).Name; o != r.ownerOfPartition(q).Name {
						moved++
						if o == newcomer {
							toNew++
						}
					}
				}
				ideal := float64(p) / float64(tc.members+1)
				t.Logf("busiest %.2f%% by partitions, %.2f%% by keys (mean %.2f%%); a join moves %d partitions (%d to the newcomer), %.2fx the ideal %.0f",
					100*float64(busiest)/float64(p), 100*float64(busiestKeys)/float64(len(keys)), 100/float64(tc.members),
					moved, toNew, float64(moved)/ideal, ideal)
				assert.LessOrEqual(t, float64(moved)/ideal, tc.maxMoveOf, "partitions moved by one join")
			})
		}
	}
}

// The first Replicas call for a count builds its table: with the default
// config that must stay cheap at the cluster sizes the package doc names.
func BenchmarkRingReplicasTable(b *testing.B) {
	for _, n := range []int{3, 10, 50} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			for range b.N {
				r, err := NewRing(testMembers(n), RingConfig{})
				if err != nil {
					b.Fatal(err)
				}
				r.Replicas("k", 2)
			}
		})
	}
}
