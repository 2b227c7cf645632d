package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/distcache/distcache/chaos/check"
	"github.com/distcache/distcache/chaos/internal/ctlapi"
	"github.com/distcache/distcache/chaos/internal/netns"
	"github.com/distcache/distcache/chaos/internal/proc"
)

// cluster is the set of node processes of one scenario run. Clients ask it
// for a node that is serving; the scenario kills, pauses and restarts nodes
// through it, and it records each node's outages for the checker.
type cluster struct {
	cfg   *config
	procs *proc.Group
	net   *netns.Net // nil: all nodes on 127.0.0.1
	hc    *http.Client
	dir   string // node logs
	label string
	// secret is the cluster's gossip secret, hex, passed in the environment.
	secret string
	epoch  time.Time
	peers  []string // every node's gossip address, fixed for the run

	nodes []*node
	// nodeArgs are the scenario's extra chaosnode flags.
	nodeArgs []string

	mu      sync.Mutex // guards outages
	outages []check.Outage
}

// node is one node slot: its process changes on restart, its name and
// gossip address do not.
type node struct {
	idx    int
	name   string
	bind   string
	port   int
	client atomic.Pointer[ctlapi.Client] // nil while the node does not serve
	ctl    *ctlapi.Client                // the current process's client, also while paused
	gen    atomic.Int64                  // incremented on each (re)start
	proc   *proc.Proc
	down   time.Duration // start of the current outage
}

func newCluster(cfg *config, procs *proc.Group, nw *netns.Net, dir, label string, epoch time.Time) (*cluster, error) {
	key := make([]byte, 32)
	if _, err := crand.Read(key); err != nil {
		return nil, err
	}
	c := &cluster{
		cfg: cfg, procs: procs, net: nw, dir: dir, label: label, epoch: epoch, secret: hex.EncodeToString(key),
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}},
	}
	for i := range cfg.nodes {
		n := &node{idx: i, name: fmt.Sprintf("node-%d", i), bind: "127.0.0.1"}
		if nw != nil {
			n.bind = nw.DataIP(i)
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n.port = port
		c.nodes = append(c.nodes, n)
		c.peers = append(c.peers, net.JoinHostPort(n.bind, strconv.Itoa(port)))
	}
	return c, nil
}

// errPortTaken reports a node that could not bind its port: another
// process took it between freePort and the node's start.
var errPortTaken = errors.New("port taken since it was chosen")

// launch creates a cluster and starts every node (see newCluster and
// startAll). A start that loses its port to another process is retried with
// fresh ports, up to three times. The caller stops the cluster.
func launch(ctx context.Context, cfg *config, procs *proc.Group, nw *netns.Net, dir, label string, epoch time.Time, nodeArgs []string) (*cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := newCluster(cfg, procs, nw, dir, label, epoch)
		if err != nil {
			return nil, err
		}
		c.nodeArgs = nodeArgs
		err = c.startAll(ctx)
		if err == nil {
			return c, nil
		}
		c.stopAll()
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "chaos: %v; again with new ports\n", err)
	}
}

// freePort returns a port free for TCP and UDP on 127.0.0.1 a moment ago.
// The node binds it itself (a restarted node must come back at the same
// address, as a real one does); a collision in between makes its start
// fail loudly.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP")
}

func (c *cluster) now() time.Duration { return time.Since(c.epoch) }

// startAll starts every node concurrently.
func (c *cluster) startAll(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Go(func() { errs[i] = c.start(ctx, i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// start starts node i's process and, once it is ready, lets clients use it.
func (c *cluster) start(ctx context.Context, i int) error {
	n := c.nodes[i]
	gen := n.gen.Add(1)
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("%s.%d.log", n.name, gen)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	control := "127.0.0.1:0"
	spec := proc.Spec{Log: logf, Env: []string{ctlapi.SecretEnv + "=" + c.secret}}
	if c.net != nil {
		control = net.JoinHostPort(c.net.ControlIP(i), "0")
		spec.Netns = c.net.NS(i)
	}
	spec.Argv = []string{c.cfg.nodeBin,
		"-name", n.name, "-bind", n.bind, "-port", strconv.Itoa(n.port),
		"-peers", strings.Join(c.peers, ","), "-control", control,
		"-label", c.label, "-timings", c.cfg.timings}
	spec.Argv = append(spec.Argv, c.nodeArgs...)
	var ctlAddr string
	spec.Ready = func(line string) bool {
		_, a, ok := ctlapi.ParseReady(line)
		if ok {
			ctlAddr = a
		}
		return ok
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := c.procs.Start(sctx, spec)
	if err != nil {
		if log, rerr := os.ReadFile(logf.Name()); rerr == nil && bytes.Contains(log, []byte("address already in use")) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("%s: %w (log %s)", n.name, err, logf.Name())
	}
	n.proc = p
	n.ctl = ctlapi.NewClient(ctlAddr, c.hc)
	n.client.Store(n.ctl)
	return nil
}

// markDown stops routing calls to node i and opens its outage.
func (c *cluster) markDown(i int) {
	n := c.nodes[i]
	n.client.Store(nil)
	n.down = c.now()
}

// markUp closes node i's outage (its client is already stored).
func (c *cluster) markUp(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outages = append(c.outages, check.Outage{Node: i, From: c.nodes[i].down, To: c.now()})
}

// kill SIGKILLs node i and waits until it is reaped.
func (c *cluster) kill(ctx context.Context, i int) error {
	c.markDown(i)
	p := c.nodes[i].proc
	p.Kill()
	return ignoreExit(p.Wait(ctx))
}

// terminate SIGTERMs node i (graceful leave) and waits until it exits.
func (c *cluster) terminate(ctx context.Context, i int) error {
	c.markDown(i)
	p := c.nodes[i].proc
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Wait(wctx); err != nil {
		return fmt.Errorf("%s after SIGTERM: %w", c.nodes[i].name, err)
	}
	return nil
}

// restart starts node i again, same name and address, and marks it up.
func (c *cluster) restart(ctx context.Context, i int) error {
	if err := c.start(ctx, i); err != nil {
		return err
	}
	c.markUp(i)
	return nil
}

// pause SIGSTOPs node i; resume SIGCONTs it.
func (c *cluster) pause(i int) error {
	c.markDown(i)
	return c.nodes[i].proc.Signal(syscall.SIGSTOP)
}

func (c *cluster) resume(i int) error {
	n := c.nodes[i]
	if err := n.proc.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	n.client.Store(n.ctl) // a paused process keeps its control address
	c.markUp(i)
	return nil
}

// pick returns a random serving node, or -1 if none serves.
func (c *cluster) pick(r *rand.Rand) (int, *ctlapi.Client) {
	off := r.IntN(len(c.nodes))
	for k := range c.nodes {
		i := (off + k) % len(c.nodes)
		if cl := c.nodes[i].client.Load(); cl != nil {
			return i, cl
		}
	}
	return -1, nil
}

func (c *cluster) outagesSnapshot() []check.Outage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]check.Outage(nil), c.outages...)
	for _, n := range c.nodes {
		if n.client.Load() == nil { // still down at the end
			out = append(out, check.Outage{Node: n.idx, From: n.down, To: 1 << 62})
		}
	}
	return out
}

// ignoreExit treats a child's non-zero exit as expected (it was killed).
func ignoreExit(err error) error {
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		return nil
	}
	return err
}

// stopAll kills this scenario's node processes.
func (c *cluster) stopAll() {
	for _, n := range c.nodes {
		n.client.Store(nil)
		if n.proc != nil {
			n.proc.Kill()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = n.proc.Wait(ctx)
			cancel()
		}
	}
	c.hc.CloseIdleConnections()
}
