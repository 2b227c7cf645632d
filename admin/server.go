package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

// Errors of Server.
var (
	// ErrServerStarted is returned by a second Start.
	ErrServerStarted = errors.New("admin: server already started")
	// ErrServerClosed is returned by Start after Shutdown.
	ErrServerClosed = errors.New("admin: server closed")
)

// Server serves an admin handler on its own listener.
type Server struct {
	cfg     Config
	handler http.Handler

	mu      sync.Mutex // guards srv, addr, started, closed
	srv     *http.Server
	addr    string
	started bool
	closed  bool

	wg sync.WaitGroup // the Serve goroutine
}

// NewServer validates cfg (ListenAddr is required) and returns a server for
// h, behind cfg.BearerToken when set; nothing is bound until Start. h is
// usually NewHandler(src, cfg.BasePath) or engine.AdminHandler().
func NewServer(cfg Config, h http.Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ListenAddr == "" {
		return nil, fmt.Errorf("%w: ListenAddr is empty", ErrInvalidConfig)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	return &Server{cfg: cfg.WithDefaults(), handler: RequireBearer(cfg.BearerToken, h)}, nil
}

// Start binds ListenAddr and serves in the background. A bind failure is
// returned at once.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrServerClosed
	case s.started:
		return ErrServerStarted
	}
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.cfg.ListenAddr, err)
	}
	s.addr = ln.Addr().String()
	warnIfExposed(s.cfg, s.addr)
	if s.cfg.TLSConfig != nil {
		tc := s.cfg.TLSConfig.Clone()
		if len(tc.NextProtos) == 0 {
			tc.NextProtos = []string{"h2", "http/1.1"}
		}
		ln = tls.NewListener(ln, tc)
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	s.started = true
	srv := s.srv
	s.wg.Go(func() { _ = srv.Serve(ln) }) // returns http.ErrServerClosed on Shutdown
	return nil
}

// warnIfExposed logs a warning when a server bound to addr for cfg listens
// on every interface without what makes that safe: a bearer token, and TLS
// to carry it.
func warnIfExposed(cfg Config, addr string) {
	log := cfg.Logger
	if log == nil || !listensOnEveryInterface(cfg.ListenAddr) {
		return
	}
	switch {
	case cfg.BearerToken == "":
		log.Warn("admin server listens on every interface without authentication: "+
			"anyone who reaches it reads the members, their counters and hot keys; "+
			"bind it to 127.0.0.1 (or a private address) or set admin.Config.BearerToken and TLSConfig",
			"addr", addr, "listen_addr", cfg.ListenAddr)
	case cfg.TLSConfig == nil:
		log.Warn("admin server listens on every interface and its bearer token travels in clear text: "+
			"set admin.Config.TLSConfig or bind it to 127.0.0.1",
			"addr", addr, "listen_addr", cfg.ListenAddr)
	}
}

// Addr returns the bound address (with the real port when ListenAddr's was
// 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections and waits for active requests, up
// to ctx's deadline and ShutdownTimeout, then closes what is left. The serve
// goroutine has exited when it returns. Idempotent; safe before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if srv == nil || already {
		s.wg.Wait()
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("admin: shutdown: %w", err)
	}
	s.wg.Wait()
	return err
}
