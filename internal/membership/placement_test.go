package membership

import (
	"fmt"
	"slices"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
)

type oracleMember string

func (m oracleMember) String() string { return string(m) + "#" }

type oracleHasher struct{}

func (oracleHasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// placePartitions is buraksezer/consistent's bounded-load placement, built
// in one sort: for the same members and config both give every partition
// the same owner.
func TestPlacePartitionsMatchesConsistent(t *testing.T) {
	for _, tc := range []struct {
		members int
		cfg     RingConfig
	}{
		{1, RingConfig{PartitionCount: 271, VirtualNodes: 20, Load: 1.25}},
		{3, RingConfig{PartitionCount: 271, VirtualNodes: 20, Load: 1.25}},
		{12, RingConfig{PartitionCount: 271, VirtualNodes: 20, Load: 1.25}},
		{3, RingConfig{PartitionCount: 4099, VirtualNodes: 64, Load: 1.05}},
		{27, RingConfig{PartitionCount: 4099, VirtualNodes: 64, Load: 1.05}},
		{100, RingConfig{PartitionCount: 4099, VirtualNodes: 64, Load: 1.05}},
		{31, RingConfig{PartitionCount: 31, VirtualNodes: 10, Load: 1.25}},
	} {
		for _, uuids := range []bool{false, true} {
			names := make([]string, tc.members)
			for i, m := range ringTestMembers(tc.members, uuids, 1) {
				names[i] = m.Name
			}
			slices.Sort(names)
			t.Run(fmt.Sprintf("n=%d/p=%d/v=%d/uuids=%v", tc.members, tc.cfg.PartitionCount, tc.cfg.VirtualNodes, uuids), func(t *testing.T) {
				got, err := placePartitions(names, tc.cfg)
				require.NoError(t, err)
				cms := make([]consistent.Member, len(names))
				for i, n := range names {
					cms[i] = oracleMember(n)
				}
				c := consistent.New(cms, consistent.Config{
					Hasher: oracleHasher{}, PartitionCount: tc.cfg.PartitionCount,
					ReplicationFactor: tc.cfg.VirtualNodes, Load: tc.cfg.Load,
				})
				for p, owner := range got {
					require.Equal(t, c.GetPartitionOwner(p).String(), names[owner]+"#", "partition %d", p)
				}
			})
		}
	}
}
