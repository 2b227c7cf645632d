package engine

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/warmup"
)

// The optional subsystems are the admin endpoints (admin.go, package admin)
// and warmup (warmup.go, packages warmup and internal/prefetch). None of
// them imports the engine: the engine implements admin.Source and adapts its
// ring to prefetch.Ring. This file holds their options and their lifecycle: started
// at the end of Start, stopped first in Stop, their goroutines tracked.

// extrasConfig holds the options of the optional subsystems (Config.extras).
// Values, not pointers: New's copy of the Config shares nothing with it.
type extrasConfig struct {
	admin     admin.Config
	adminSet  bool
	warmup    warmup.Config
	warmupSet bool
}

func (x *extrasConfig) validate() []error {
	var errs []error
	if x.adminSet {
		if err := x.admin.Validate(); err != nil {
			//lint:ignore ST1005 validation errors start with the Config field they name
			errs = append(errs, fmt.Errorf("Admin: %w", err))
		}
	}
	if x.warmupSet {
		if err := x.warmup.Validate(); err != nil {
			//lint:ignore ST1005 validation errors start with the Config field they name
			errs = append(errs, fmt.Errorf("Warmup: %w", err))
		}
	}
	return errs
}

// extras is the engine's state of the optional subsystems (Engine.ext).
type extras struct {
	handlerOnce sync.Once
	handler     http.Handler

	server atomic.Pointer[admin.Server]
	// departed lists recent departures for the cluster view.
	departed departures
	// warm is set while warmup runs; recordAccess reads it on every Get.
	warm atomic.Pointer[warmer]

	// mu orders startExtras and the goroutines started by goExtra against
	// stopExtras.
	mu      sync.Mutex
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// goExtraLocked runs fn on an engine goroutine that stopExtras waits for.
// Callers hold e.ext.mu.
func (e *Engine) goExtraLocked(fn func()) bool {
	x := &e.ext
	if x.stopped {
		return false
	}
	x.wg.Add(1)
	if !e.spawn(func() { defer x.wg.Done(); fn() }) {
		x.wg.Done()
		return false
	}
	return true
}

func (e *Engine) goExtra(fn func()) bool {
	e.ext.mu.Lock()
	defer e.ext.mu.Unlock()
	return e.goExtraLocked(fn)
}

// startExtras runs at the end of a successful Start (the engine is
// running): it starts the admin server and warmup.
func (e *Engine) startExtras() error {
	x := &e.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopped {
		return nil // Stop began meanwhile
	}
	ctx, cancel := context.WithCancel(e.base)
	x.cancel = cancel
	cfg := &e.cfg.extras
	if cfg.adminSet && cfg.admin.ListenAddr != "" {
		acfg := cfg.admin
		if acfg.Logger == nil {
			acfg.Logger = e.log // the warning about every interface
		}
		srv, err := admin.NewServer(acfg, e.AdminHandler())
		if err != nil {
			return fmt.Errorf("distcache: admin server: %w", err)
		}
		if err := srv.Start(); err != nil {
			return fmt.Errorf("distcache: admin server: %w", err)
		}
		x.server.Store(srv)
		e.log.Info("admin server listening", "addr", srv.Addr())
	}
	if !cfg.warmupSet {
		for _, st := range *e.keyspaces.Load() {
			if len(st.settings.WarmKeys) > 0 {
				e.log.Warn("warm keys are configured but warmup is off (use WithWarmup)", "keyspace", st.name)
			}
		}
		return nil
	}
	w := newWarmer(e, ctx)
	e.goExtraLocked(w.decayLoop)
	if w.cfg.RefreshInterval > 0 {
		e.goExtraLocked(w.refreshLoop)
	}
	if w.cfg.WarmOnJoin {
		// Warm the keys this node owns now; the round waits for the ring to
		// include the members Start joined. No other goroutine sees w yet.
		w.pending, w.running = true, true
		if !e.goExtraLocked(w.loop) {
			w.running = false
		}
	}
	// Published last: from here on Gets are tracked and ring changes
	// schedule rounds (which never overlap the start round).
	x.warm.Store(w)
	return nil
}

// stopExtras runs first in Stop: it stops the admin server and warmup and
// waits for their goroutines.
func (e *Engine) stopExtras() error {
	x := &e.ext
	x.mu.Lock()
	x.stopped = true
	cancel := x.cancel
	x.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var err error
	if srv := x.server.Swap(nil); srv != nil {
		err = srv.Shutdown(context.Background()) // bounded by admin ShutdownTimeout
	}
	x.wg.Wait()
	return err
}
