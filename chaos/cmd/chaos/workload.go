package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/distcache/distcache/chaos/check"
	"github.com/distcache/distcache/chaos/internal/ctlapi"
)

// workload is the driver's clients: cfg.clients clients sharing one rate
// limit, each making Gets, Puts and Deletes (80/15/5) on uniformly chosen
// keys through a random serving node, and recording every call. A client
// keeps up to cfg.inFlight calls in flight, as a service's request handlers
// would: with one call at a time, calls waiting out their deadline on an
// unreachable owner would throttle the whole workload to a few calls per
// second exactly when the faults need traffic.
//
// Writes of a key are serialized (one writer per key at a time: a write
// takes the key's lock for the whole call), and each carries the key's
// next version, so a key's writes are totally ordered in time and the
// checker can tell an older version from a newer one.
type workload struct {
	c       *cluster
	cfg     *config
	keys    []string
	limiter *rate.Limiter

	// locks[i] guards versions[i] and is held for the whole of a write of
	// keys[i].
	locks    []sync.Mutex
	versions []uint64

	recMu   sync.Mutex // guards records
	records []check.Call
}

func newWorkload(c *cluster, cfg *config) *workload {
	w := &workload{
		c: c, cfg: cfg,
		limiter:  rate.NewLimiter(rate.Limit(cfg.rate), cfg.clients),
		locks:    make([]sync.Mutex, cfg.keys),
		versions: make([]uint64, cfg.keys),
	}
	for i := range cfg.keys {
		w.keys = append(w.keys, fmt.Sprintf("key-%04d", i))
	}
	return w
}

// run makes calls until ctx ends, then waits for the calls in flight.
func (w *workload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for id := range w.cfg.clients {
		wg.Go(func() { w.client(ctx, id) })
	}
	wg.Wait()
}

func (w *workload) client(ctx context.Context, id int) {
	r := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	slots := make(chan struct{}, w.cfg.inFlight)
	var calls sync.WaitGroup
	defer calls.Wait()
	for w.limiter.Wait(ctx) == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		node, cl := w.c.pick(r)
		if cl == nil {
			<-slots
			continue // nobody serves: nothing to call
		}
		op, k := r.IntN(100), r.IntN(len(w.keys))
		if op >= 80 {
			var ok bool
			if k, ok = w.lockFree(r); !ok {
				<-slots
				continue
			}
		}
		calls.Go(func() {
			defer func() { <-slots }()
			var c check.Call
			switch {
			case op < 80:
				c = w.get(ctx, id, node, cl, k)
			case op < 95:
				c = w.write(ctx, id, node, cl, k, check.Put)
			default:
				c = w.write(ctx, id, node, cl, k, check.Delete)
			}
			w.recMu.Lock()
			w.records = append(w.records, c)
			w.recMu.Unlock()
		})
	}
}

// warm reads every key once, through the nodes in turn, before the
// workload starts: a service that embeds the cache has been running
// before any fault, and the steady phase's DataSource fetches are then
// the warm rate (misses after Deletes), not a cold start's. The reads are
// part of the history.
func (w *workload) warm(ctx context.Context) {
	slots := make(chan struct{}, w.cfg.clients*w.cfg.inFlight)
	var wg sync.WaitGroup
	for k := range w.keys {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		node := k % len(w.c.nodes)
		cl := w.c.nodes[node].client.Load()
		if cl == nil {
			<-slots
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			c := w.get(ctx, w.cfg.clients, node, cl, k) // a client id of its own
			w.recMu.Lock()
			w.records = append(w.records, c)
			w.recMu.Unlock()
		})
	}
	wg.Wait()
}

// lockFree locks a random key that no other client is writing.
func (w *workload) lockFree(r *rand.Rand) (int, bool) {
	for range 8 {
		k := r.IntN(len(w.keys))
		if w.locks[k].TryLock() {
			return k, true
		}
	}
	return 0, false
}

// callCtx bounds a call well past its deadline (so an overrun is measured,
// not cut short) and does not end with the workload (calls in flight finish).
func (w *workload) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), w.cfg.deadline+10*time.Second)
}

func (w *workload) get(ctx context.Context, id, node int, cl *ctlapi.Client, k int) check.Call {
	cctx, cancel := w.callCtx(ctx)
	defer cancel()
	c := check.Call{Client: id, Node: node, Op: check.Get, Key: w.keys[k], Start: w.c.now()}
	res, err := cl.Op(cctx, ctlapi.OpGet, c.Key, 0, w.cfg.deadline)
	c.End = w.c.now()
	record(&c, res, err)
	if c.OK {
		v, perr := ctlapi.ParseValue(c.Key, []byte(res.Value))
		if perr != nil {
			c.BadValue = perr.Error()
		}
		c.Version = v
	}
	return c
}

// write runs a Put or a Delete of key k, whose lock the caller holds; it
// releases it.
func (w *workload) write(ctx context.Context, id, node int, cl *ctlapi.Client, k int, kind check.Op) check.Call {
	defer w.locks[k].Unlock()
	cctx, cancel := w.callCtx(ctx)
	defer cancel()
	w.versions[k]++
	c := check.Call{Client: id, Node: node, Op: kind, Key: w.keys[k], Version: w.versions[k], Start: w.c.now()}
	op := ctlapi.OpPut
	if kind == check.Delete {
		op = ctlapi.OpDelete
	}
	res, err := cl.Op(cctx, op, c.Key, c.Version, w.cfg.deadline)
	c.End = w.c.now()
	record(&c, res, err)
	return c
}

func record(c *check.Call, res ctlapi.OpResult, err error) {
	switch {
	case err != nil:
		c.Err = ctlapi.ErrTransport
	case !res.OK:
		c.Err = res.Err
	default:
		c.OK = true
	}
}

// calls returns every recorded call; call it after run returned.
func (w *workload) calls() []check.Call {
	w.recMu.Lock()
	defer w.recMu.Unlock()
	return w.records
}
