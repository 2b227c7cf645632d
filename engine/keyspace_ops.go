package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/distcache/distcache/keyspace"
)

// KeySpaces lists the keyspaces of this node, sorted.
func (e *Engine) KeySpaces() []string {
	return e.keyspaces.Load().names()
}

// DeleteKeySpace removes a keyspace and all its entries on every node of the
// cluster (cluster scope): this node first, then every member in parallel.
// Gets of it then fail with ErrKeySpaceNotFound everywhere. An unknown name
// gives ErrKeySpaceNotFound. Unreachable members are reported in the error;
// the keyspace is gone from the others. A node that restarts with the
// keyspace in its configuration has it again: deletion is not persisted.
func (e *Engine) DeleteKeySpace(ctx context.Context, name string) error {
	return e.DeleteKeySpaces(ctx, []string{name})
}

// DeleteKeySpaces removes several keyspaces cluster-wide (see
// DeleteKeySpace). Names unknown on this node give ErrKeySpaceNotFound,
// naming them; the known ones are still deleted.
func (e *Engine) DeleteKeySpaces(ctx context.Context, names []string) error {
	if err := e.checkState(); err != nil {
		return err
	}
	e.obs.deleteKeySpaces.Add(1)
	ctx, done := e.obs.start(ctx, "delete_keyspaces", "")
	var errs []error
	var known []string
	for _, n := range names {
		if err := e.deleteKeySpaceLocal(n); err != nil {
			errs = append(errs, err)
			continue
		}
		known = append(known, n)
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	self := e.cl.Self()
	for _, m := range e.cl.Ring().Members() {
		if m == self {
			continue
		}
		for _, n := range known {
			wg.Go(func() {
				e2 := e.peers.deleteKeySpace(ctx, m, n)
				if e2 != nil && !errors.Is(e2, ErrKeySpaceNotFound) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("keyspace %q on %s: %w", n, m.Name, e2))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	err := errors.Join(errs...)
	done(err)
	return err
}

// deleteKeySpaceLocal removes a keyspace from this node's snapshot and
// closes its store (the store tolerates calls that raced the removal).
func (e *Engine) deleteKeySpaceLocal(name string) error {
	e.ksMu.Lock()
	defer e.ksMu.Unlock()
	cur := *e.keyspaces.Load()
	st := cur[name]
	if st == nil {
		return fmt.Errorf("%w: %q", ErrKeySpaceNotFound, name)
	}
	next := make(ksTable, len(cur))
	for n, s := range cur {
		if n != name {
			next[n] = s
		}
	}
	e.keyspaces.Store(&next)
	st.close()
	return nil
}

// UpdateKeySpace replaces a keyspace's definition on this node (node
// scope: a DataSource is code, so every node must call it, as in a rolling
// configuration change). The keyspace must exist (else ErrKeySpaceNotFound);
// its per-keyspace overrides from the engine options still apply, and are
// validated against the new definition. The node's entries of the keyspace
// are dropped (they came from the old DataSource); concurrent Gets see
// either the old or the new keyspace, never an error.
func (e *Engine) UpdateKeySpace(ctx context.Context, ks keyspace.KeySpace) error {
	if err := e.checkState(); err != nil {
		return err
	}
	if ks == nil {
		return fmt.Errorf("%w: nil keyspace", ErrInvalidConfig)
	}
	if err := validateKeySpace(ks); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	e.obs.updateKeySpace.Add(1)
	_, done := e.obs.start(ctx, "update_keyspace", ks.Name())
	err := e.updateKeySpace(ks)
	done(err)
	return err
}

func (e *Engine) updateKeySpace(ks keyspace.KeySpace) error {
	s, err := e.cfg.settingsFor(ks)
	if err != nil {
		return fmt.Errorf("%w: keyspace %q: %w", ErrInvalidConfig, ks.Name(), err)
	}
	e.ksMu.Lock()
	defer e.ksMu.Unlock()
	cur := *e.keyspaces.Load()
	old := cur[ks.Name()]
	if old == nil {
		return fmt.Errorf("%w: %q", ErrKeySpaceNotFound, ks.Name())
	}
	st, err := newKSState(ks, s, e.cfg.replicasFor(ks.Name()), e.log)
	if err != nil {
		return fmt.Errorf("%w: keyspace %q: %w", ErrInvalidConfig, ks.Name(), err)
	}
	st.holders = old.holders // peers' copies outlive the swap
	next := make(ksTable, len(cur))
	for n, s := range cur {
		next[n] = s
	}
	next[ks.Name()] = st
	e.keyspaces.Store(&next)
	old.close()
	e.warmReplacedKeySpace(ks.Name())
	return nil
}
