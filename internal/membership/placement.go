package membership

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// vnode is one point of a member on the hash ring.
type vnode struct {
	hash   uint64
	member int32 // index into the sorted member list
}

// vnodeKey is the string a member's virtual node i is hashed from: the name,
// a non-digit terminator and the digits of i. The terminator keeps the keys
// of different members distinct ("node-1" and "node-11" would otherwise both
// place "node-110").
func vnodeKey(buf []byte, name string, i int) []byte {
	buf = append(append(buf[:0], name...), '#')
	return strconv.AppendInt(buf, int64(i), 10)
}

// placePartitions assigns every partition to a member with consistent
// hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam), the
// algorithm of buraksezer/consistent v0.10.0, whose output it reproduces
// exactly for the same member strings: each member puts cfg.VirtualNodes
// points on a 64-bit ring; partition p starts at the first point at or after
// xxhash64(p as 8 little-endian bytes) and walks clockwise to the first
// member that owns fewer than ceil(floor(P/N) * Load) partitions. Partitions
// are placed in increasing order.
//
// consistent re-sorts its point list after adding each member, which makes
// construction O(N² · VirtualNodes · log) (seconds at 1,000 members); here
// the points are sorted once. names must be sorted and distinct; a member
// that appears later in names wins a point whose hash collides, as a later
// insertion does in consistent.
func placePartitions(names []string, cfg RingConfig) ([]int32, error) {
	return placeOn(ringPoints(names, cfg), len(names), cfg)
}

// ringPoints returns the members' points sorted by hash (then member),
// before placeOn resolves collisions.
func ringPoints(names []string, cfg RingConfig) []vnode {
	n := len(names)
	points := make([]vnode, 0, n*cfg.VirtualNodes)
	var buf []byte
	for i, name := range names {
		for v := range cfg.VirtualNodes {
			buf = vnodeKey(buf, name, v)
			points = append(points, vnode{hash: xxhash.Sum64(buf), member: int32(i)})
		}
	}
	slices.SortFunc(points, func(a, b vnode) int {
		if a.hash != b.hash {
			return cmp.Compare(a.hash, b.hash)
		}
		return cmp.Compare(a.member, b.member)
	})
	return points
}

// placeOn places the partitions on points (sorted by ringPoints, possibly
// with some members' points left out) shared by n members; it keeps
// points unchanged. Member indexes are those of the points.
func placeOn(points []vnode, n int, cfg RingConfig) ([]int32, error) {
	points = slices.Clone(points)
	for i := len(points) - 2; i >= 0; i-- {
		if points[i].hash == points[i+1].hash {
			points[i].member = points[i+1].member
		}
	}

	capacity := int(math.Ceil(float64(cfg.PartitionCount/n) * cfg.Load))
	loads := make([]int, maxMember(points)+1)
	owners := make([]int32, cfg.PartitionCount)
	var pb [8]byte
	for p := range owners {
		binary.LittleEndian.PutUint64(pb[:], uint64(p))
		h := xxhash.Sum64(pb[:])
		idx, _ := slices.BinarySearchFunc(points, h, func(v vnode, h uint64) int { return cmp.Compare(v.hash, h) })
		placed := false
		// consistent visits at most len(points)-1 points before giving up.
		for range len(points) - 1 {
			if idx >= len(points) {
				idx = 0
			}
			if m := points[idx].member; loads[m] < capacity {
				owners[p] = m
				loads[m]++
				placed = true
				break
			}
			idx++
		}
		if !placed {
			return nil, fmt.Errorf("%w: not enough room to place partition %d (%d members x %d virtual nodes, %d partitions each at most)",
				ErrInvalidRing, p, n, cfg.VirtualNodes, capacity)
		}
	}
	return owners, nil
}

func maxMember(points []vnode) int32 {
	m := int32(-1)
	for _, p := range points {
		m = max(m, p.member)
	}
	return m
}
