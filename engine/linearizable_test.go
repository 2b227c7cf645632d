package engine_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// The linearizability check: on a healthy 3-node cluster, every key is a
// register whose writes are "update the database, then Put the new value
// (or Delete the key) through a random node — its owner or not", and whose
// reads are Gets and GetManys through random nodes. The DataSource is slow
// (it sleeps, reads the database, then sleeps), so loads race writes. Porcupine
// checks the recorded history of each key against a single-copy register:
// every read returns the value of a write that may be the latest at some
// instant inside the read's interval, and reads never go back in time.
// Checked without near caches, with the default one, and with near copies
// that lapse every 100 ms or live a minute.

// linOp is an operation's input: a write of version v, or a read.
type linOp struct {
	write bool
	v     int
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := op.Metadata.(linMeta).key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in := input.(linOp)
		if in.write {
			return true, in.v
		}
		return output.(int) == state.(int), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(linOp)
		if in.write {
			return "write v" + strconv.Itoa(in.v)
		}
		return "read -> v" + strconv.Itoa(output.(int))
	},
}

// linMeta says where an operation ran.
type linMeta struct {
	key  string
	node int
	what string // put, delete, get, getmany
}

// linHistory records operations with monotonic timestamps.
type linHistory struct {
	t0       time.Time
	d        time.Duration
	maxReads int64
	reads    atomic.Int64
	mu       sync.Mutex
	ops      []porcupine.Operation
}

// allowedReads is how many reads may have been recorded by time at.
func (h *linHistory) allowedReads(at int64) int64 {
	return h.maxReads * min(at, int64(h.d)) / int64(h.d)
}

func (h *linHistory) now() int64 { return int64(time.Since(h.t0)) }

func (h *linHistory) add(client int, m linMeta, in linOp, out int, call, ret int64) {
	if !in.write && h.reads.Add(1) > h.allowedReads(ret) {
		h.reads.Add(-1)
		return
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret, Metadata: m})
	h.mu.Unlock()
}

// staleReads lists reads that returned a version older than a write
// acknowledged before the read began: the plainest kind of violation, and
// the one worth printing when porcupine rejects a history.
func staleReads(ops []porcupine.Operation) []string {
	var out []string
	for _, r := range ops {
		in := r.Input.(linOp)
		if in.write {
			continue
		}
		m := r.Metadata.(linMeta)
		for _, w := range ops {
			win := w.Input.(linOp)
			wm := w.Metadata.(linMeta)
			if win.write && wm.key == m.key && w.Return < r.Call && win.v > r.Output.(int) {
				out = append(out, fmt.Sprintf("%s on node %d of %s [%d, %d] read v%d; %s v%d on node %d returned at %d (%v before)",
					m.what, m.node, m.key, r.Call, r.Return, r.Output, wm.what, win.v, wm.node, w.Return, time.Duration(r.Call-w.Return)))
				break
			}
		}
		if len(out) >= 10 {
			break
		}
	}
	return out
}

func version(t *testing.T, v []byte) int {
	n, err := strconv.Atoi(string(v[1:]))
	if err != nil || len(v) == 0 || v[0] != 'v' {
		t.Errorf("unexpected value %q", v)
	}
	return n
}

func TestLinearizableWrites(t *testing.T) {
	for _, v := range []struct {
		name string
		opts []engine.Option
	}{
		{"near=off", []engine.Option{engine.WithKeySpaceNearCache(ks, 0, 0)}},
		// The default near cache (2 s): copies, pushes and their 500 ms lease.
		{"near=default", nil},
		// Copies lapse and are refilled all the time.
		{"near=100ms", []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, 100*time.Millisecond)}},
		{"near=1m", []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute)}},
	} {
		t.Run(v.name, func(t *testing.T) {
			c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: v.opts})
			// Writes invalidate only the nodes their owner recorded as
			// holders, as in a cluster that has been stable for a while.
			settleAll(c)
			checkLinearizable(t, c, 2*time.Second)
		})
	}
}

// checkLinearizable runs the workload on c for d and checks its history.
func checkLinearizable(t *testing.T, c *testutil.Cluster, d time.Duration) {
	const (
		nKeys          = 6
		readersPerNode = 3
		// maxReads bounds the reads recorded, spread evenly over the run,
		// so that the check takes seconds; the reads not recorded still
		// run. Dropping reads from a history cannot make it
		// non-linearizable, so this only costs detection power.
		maxReads = 12000
		// minReads is the least history worth checking: on a machine too
		// loaded to record it in d, the run goes on (up to 5*d) until it
		// has it.
		minReads = 1000
	)
	db := c.DataSource
	// A fetch reads the database at a random moment of its first 300 µs,
	// then takes 300 µs more: fetches that start late read values newer
	// than fetches begun after them.
	db.SetReadDelay(300 * time.Microsecond)
	db.SetLatency(300 * time.Microsecond)
	keys := make([]string, nKeys)
	for i := range keys {
		keys[i] = "lin-" + strconv.Itoa(i)
		db.SetValue(keys[i], []byte("v0"))
	}
	h := &linHistory{t0: time.Now(), d: d, maxReads: maxReads}
	running := func() bool {
		el := time.Since(h.t0)
		return el < d || (h.reads.Load() < minReads && el < 5*d)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []error
	)
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	// One writer per key: versions of a key are totally ordered.
	for ki, key := range keys {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(ki), 1))
			for v := 1; running(); v++ {
				ni := r.IntN(c.Len())
				node := c.Node(ni)
				call := h.now()
				db.SetValue(key, []byte("v"+strconv.Itoa(v))) // the database first
				var err error
				meta := linMeta{key: key, node: ni, what: "put"}
				if r.IntN(3) == 0 {
					meta.what = "delete"
					err = node.Delete(context.Background(), ks, key)
				} else {
					err = node.Put(context.Background(), ks, engine.Entry{Key: key, Value: []byte("v" + strconv.Itoa(v))})
				}
				ret := h.now()
				if err != nil {
					fail(fmt.Errorf("write %s v%d: %w", key, v, err))
					ret = 1 << 62 // outcome unknown: it may take effect any time later
				}
				h.add(1000+ki, meta, linOp{write: true, v: v}, 0, call, ret)
				time.Sleep(time.Duration(r.IntN(500)) * time.Microsecond) // vary the interleavings
			}
		})
	}
	client := 0
	for n := range c.Len() {
		for range readersPerNode {
			client++
			id := client
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(id), 2))
				node := c.Node(n)
				for running() {
					if r.IntN(8) == 0 {
						batch := []string{keys[r.IntN(nKeys)], keys[r.IntN(nKeys)], keys[r.IntN(nKeys)]}
						call := h.now()
						vals, err := node.GetMany(context.Background(), ks, batch)
						ret := h.now()
						if err != nil {
							fail(fmt.Errorf("get many on node %d: %w", n, err))
							continue
						}
						for _, k := range batch {
							v, ok := vals[k]
							if !ok {
								fail(fmt.Errorf("get many on node %d: %s missing", n, k))
								continue
							}
							h.add(id, linMeta{key: k, node: n, what: "getmany"}, linOp{}, version(t, v), call, ret)
						}
						continue
					}
					key := keys[r.IntN(nKeys)]
					call := h.now()
					v, err := node.Get(context.Background(), ks, key)
					ret := h.now()
					if err != nil {
						if !errors.Is(err, keyspace.ErrNotFound) {
							fail(fmt.Errorf("get %s on node %d: %w", key, n, err))
						}
						continue
					}
					h.add(id, linMeta{key: key, node: n, what: "get"}, linOp{}, version(t, v), call, ret)
				}
			})
		}
	}
	wg.Wait()
	require.Empty(t, failures, "a healthy cluster fails no call")
	reads := 0
	for _, op := range h.ops {
		if !op.Input.(linOp).write {
			reads++
		}
	}
	t.Logf("%d operations (%d reads)", len(h.ops), reads)
	for n := range c.Len() {
		st := ksStats(t, c.Node(n))
		t.Logf("node %d: degraded %d, forward errors %d, forwarded %d", n, st.Degraded, st.ForwardErrors, st.Forwarded)
	}
	require.GreaterOrEqual(t, reads, minReads, "enough reads to mean something")
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, h.ops, time.Minute)
	t.Logf("checked in %v", time.Since(start).Round(time.Millisecond))
	if res != porcupine.Ok {
		t.Errorf("history is %s, not linearizable", res)
		for _, s := range staleReads(h.ops) {
			t.Log("stale: " + s)
		}
		for _, part := range info.PartialLinearizationsOperations() {
			for _, lin := range part {
				if len(lin) > 0 {
					last := lin[len(lin)-1]
					t.Logf("longest linearizable prefix of %v (owner node %d) ends at %+v", last.Metadata, c.OwnerIndex(0, last.Metadata.(linMeta).key), last)
					if path := os.Getenv("LIN_DUMP"); path != "" {
						dumpKey(t, path+"."+last.Metadata.(linMeta).key, h.ops, last.Metadata.(linMeta).key, last.Call)
					}
					break
				}
			}
		}
	}
}

// dumpKey writes key's operations around time at to path (debugging aid,
// LIN_DUMP=path).
func dumpKey(t *testing.T, path string, ops []porcupine.Operation, key string, at int64) {
	var sel []porcupine.Operation
	for _, op := range ops {
		if op.Metadata.(linMeta).key == key && op.Return > at-5e6 && op.Call < at+10e6 {
			sel = append(sel, op)
		}
	}
	slices.SortFunc(sel, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var b strings.Builder
	for _, op := range sel {
		m := op.Metadata.(linMeta)
		in := op.Input.(linOp)
		v := op.Output.(int)
		if in.write {
			v = in.v
		}
		fmt.Fprintf(&b, "%12d %12d c%-4d node%d %-8s v%d\n", op.Call, op.Return, op.ClientId, m.node, m.what, v)
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}
