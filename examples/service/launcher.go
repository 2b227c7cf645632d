package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// launcher runs the example's cluster: it creates and seeds the shared
// SQLite file in a temporary directory, then starts each node as a child
// OS process by re-executing its own binary with the "node" subcommand.
// Children die with it: on Linux the kernel kills them when it exits
// (Pdeathsig, see procattr_linux.go), and everywhere they shut down when
// their stdin, a pipe from the launcher, closes.
type launcher struct {
	exe    string // this binary
	dir    string // temporary directory holding the database
	dbPath string
	secret string // gossip secret, hex
	out    io.Writer
	// verbose passes -v to the nodes.
	verbose bool

	mu       sync.Mutex // guards children
	children map[string]*child
}

// child is one running node process.
type child struct {
	name         string
	cmd          *exec.Cmd
	stdin        io.Closer
	http, gossip string        // from its ready line
	done         chan struct{} // closed once the process has exited and been reaped
	err          error         // its exit status, valid after done
}

// newLauncher creates the temporary directory and the seeded database.
func newLauncher(out io.Writer, users int) (*launcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "distcache-service-")
	if err != nil {
		return nil, err
	}
	l := &launcher{exe: exe, dir: dir, dbPath: filepath.Join(dir, "users.db"), out: out, children: map[string]*child{}}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	l.secret = hex.EncodeToString(key)
	db, err := openStore(l.dbPath)
	if err == nil {
		err = db.seed(context.Background(), users)
		db.Close()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("seed %s: %w", l.dbPath, err)
	}
	return l, nil
}

// start starts node name, joining the nodes that run now, and waits until it
// serves. A node that ran before restarts on its previous addresses, as a
// restarted instance usually does: the others then see the same member come
// back rather than its name claimed from a second address, which they
// refuse until the old one has been dead for a while.
func (l *launcher) start(name string) (*child, error) {
	var peers []string
	for _, c := range l.running() {
		peers = append(peers, c.gossip)
	}
	args := []string{"node", "-name", name, "-db", l.dbPath, "-watch-stdin", "-peers", strings.Join(peers, ",")}
	l.mu.Lock()
	if prev := l.children[name]; prev != nil {
		args = append(args, "-gossip", prev.gossip, "-http", prev.http)
	}
	l.mu.Unlock()
	if l.verbose {
		args = append(args, "-v")
	}
	cmd := exec.Command(l.exe, args...)
	cmd.Env = append(os.Environ(), secretEnv+"="+l.secret)
	cmd.SysProcAttr = childProcAttr()
	cmd.Stderr = &prefixWriter{w: l.out, prefix: "[" + name + "] "}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, readyPrefix); ok && c.http == "" {
				for f := range strings.FieldsSeq(rest) {
					k, v, _ := strings.Cut(f, "=")
					switch k {
					case "http":
						c.http = v
					case "gossip":
						c.gossip = v
					}
				}
				close(ready)
				continue
			}
			fmt.Fprintf(l.out, "[%s] %s\n", name, line)
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	select {
	case <-ready:
	case <-c.done:
		return nil, fmt.Errorf("%s exited before serving: %v", name, c.err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-c.done
		return nil, fmt.Errorf("%s did not start in 30s", name)
	}
	l.mu.Lock()
	l.children[name] = c
	l.mu.Unlock()
	return c, nil
}

// running returns the children that have not exited, by name.
func (l *launcher) running() []*child {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*child
	for _, c := range l.children {
		select {
		case <-c.done:
		default:
			out = append(out, c)
		}
	}
	return out
}

// kill sends SIGKILL to node name (a crash: no leave, no hand-off) and
// waits until the process is gone.
func (l *launcher) kill(name string) error {
	l.mu.Lock()
	c := l.children[name]
	l.mu.Unlock()
	if c == nil {
		return fmt.Errorf("no node %s", name)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-c.done
	return nil
}

// stop asks every node to shut down gracefully (SIGTERM), waits for each
// (SIGKILL after the timeout), then removes the temporary directory. It
// returns an error if a node did not exit cleanly.
func (l *launcher) stop(timeout time.Duration) error {
	l.mu.Lock()
	children := make([]*child, 0, len(l.children))
	for _, c := range l.children {
		children = append(children, c)
	}
	l.mu.Unlock()
	var errs []error
	for _, c := range children {
		select {
		case <-c.done:
			continue // killed earlier
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(timeout)
	for _, c := range children {
		select {
		case <-c.done:
		case <-deadline:
			_ = c.cmd.Process.Kill()
			<-c.done
			errs = append(errs, fmt.Errorf("%s did not stop in %v", c.name, timeout))
		}
		c.stdin.Close()
	}
	for _, c := range children {
		// A reaped child's pid no longer exists: prove that none survives.
		if !processGone(c.cmd.Process.Pid) {
			errs = append(errs, fmt.Errorf("%s (pid %d) still exists", c.name, c.cmd.Process.Pid))
		}
	}
	if err := os.RemoveAll(l.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// prefixWriter prefixes every line written through it, so the nodes' logs
// are told apart in the launcher's output.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool // in the middle of a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var buf []byte
	for _, c := range b {
		if !p.mid {
			buf = append(buf, p.prefix...)
			p.mid = true
		}
		buf = append(buf, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(buf); err != nil {
		return 0, err
	}
	return len(b), nil
}
