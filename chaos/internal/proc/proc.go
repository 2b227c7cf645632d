// Package proc starts and tracks the chaos suite's child processes so that
// none outlives the driver: each runs in its own process group with
// Pdeathsig SIGKILL (the kernel kills it if the driver dies, even by
// SIGKILL), and Group.KillAll kills every group still running.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Group owns child processes.
type Group struct {
	mu     sync.Mutex // guards procs, closed
	procs  map[*Proc]struct{}
	closed bool
}

// NewGroup returns an empty group.
func NewGroup() *Group { return &Group{procs: map[*Proc]struct{}{}} }

// Spec describes a child.
type Spec struct {
	// Argv is the program and its arguments.
	Argv []string
	// Netns, if set, runs the child in that network namespace (through
	// `ip netns exec`, which execs the program: the child's pid is the
	// program's).
	Netns string
	// Env is added to the driver's environment for the child.
	Env []string
	// Log receives the child's stderr, and its stdout lines after the one
	// Ready accepted.
	Log io.Writer
	// Ready parses stdout lines until it returns true; Start returns then.
	// nil: Start returns at once.
	Ready func(line string) bool
}

// Proc is one started child.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited and been reaped
	err  error         // its exit status, valid once done is closed
}

// Start starts a child and waits for its ready line, ctx's end, or its exit.
func (g *Group) Start(ctx context.Context, spec Spec) (*Proc, error) {
	argv := spec.Argv
	if spec.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", spec.Netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stderr = spec.Log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, errors.New("proc: group closed")
	}
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	g.procs[p] = struct{}{}
	g.mu.Unlock()

	ready := make(chan struct{})
	go func() {
		// The one goroutine per child: it reads stdout to EOF, then reaps
		// the child; done tells everyone else.
		sc := bufio.NewScanner(stdout)
		isReady := spec.Ready == nil
		if isReady {
			close(ready)
		}
		for sc.Scan() {
			if !isReady && spec.Ready(sc.Text()) {
				isReady = true
				close(ready)
				continue
			}
			if spec.Log != nil {
				fmt.Fprintln(spec.Log, sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.err = cmd.Wait()
		g.mu.Lock()
		delete(g.procs, p)
		g.mu.Unlock()
		close(p.done)
	}()

	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready: %v", argv[0], p.err)
	case <-ctx.Done():
		p.Kill()
		<-p.done
		return nil, fmt.Errorf("%s not ready: %w", argv[0], ctx.Err())
	}
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the child alone.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	return syscall.Kill(p.Pid(), sig)
}

// Kill sends SIGKILL to the child's whole process group (a stopped child
// dies too).
func (p *Proc) Kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	}
}

// Wait waits for the child to exit, up to ctx, and returns its exit status.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// KillAll kills every child still running, refuses new ones, and waits up
// to timeout for them to be reaped. Safe to call more than once.
func (g *Group) KillAll(timeout time.Duration) {
	g.mu.Lock()
	g.closed = true
	procs := make([]*Proc, 0, len(g.procs))
	for p := range g.procs {
		procs = append(procs, p)
	}
	g.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	deadline := time.After(timeout)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			return
		}
	}
}
