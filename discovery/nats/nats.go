package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/distcache/distcache/discovery"
)

// ErrAlreadyStarted is returned by Start when the provider is already
// started. Stop it first; a stopped provider may be started again.
var ErrAlreadyStarted = errors.New("nats: provider already started")

// msgBuffer is the capacity of the channel that receives announce, leave,
// discover and hello messages; beyond it nats.go drops messages (slow
// consumer) and reports them to the logger.
const msgBuffer = 256

// replyBuffer is the capacity of the channel that gathers the replies to one
// discovery request (one per node); beyond it replies are dropped and the
// sender is found in the next poll.
const replyBuffer = 1024

// Discovery announces the local node on NATS and finds peers by
// request/reply. Create it with New; it is safe for concurrent use.
type Discovery struct {
	cfg    Config
	logger *slog.Logger

	mu   sync.Mutex // guards sess; held by Start and Stop for their duration
	sess *session   // nil when not started
}

var _ discovery.Provider = (*Discovery)(nil)

// New validates cfg and returns a provider. cfg is copied; zero fields take
// their defaults. New does not connect: Start does.
func New(cfg Config) (*Discovery, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Discovery{cfg: cfg, logger: logger}, nil
}

// Start connects to NATS, subscribes to the cluster's subjects and announces
// self. self.Addr must be a dialable host:port; an empty self.Name defaults
// to self.Addr. A failed connect is returned (wrapping the nats.go error,
// e.g. natsgo.ErrNoServers) and leaves the provider stopped.
func (d *Discovery) Start(ctx context.Context, self discovery.Self) error {
	if self.Name == "" {
		self.Name = self.Addr
	}
	if err := checkAddr(self.Addr); err != nil {
		return fmt.Errorf("nats: start: self %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess != nil {
		return ErrAlreadyStarted
	}
	s, err := startSession(ctx, d.cfg, d.logger, self)
	if err != nil {
		return err
	}
	d.sess = s
	return nil
}

// DiscoverPeers asks every node on the subject for its address and returns
// the replies (self included), sorted and de-duplicated. The gather window
// ends at Config.Timeout, at the caller's deadline (whichever is first), or
// earlier once every known peer has replied and Config.QuietPeriod passed
// without a new reply. Reaching the window's end is not an error; a
// cancelled ctx or a closed connection is.
func (d *Discovery) DiscoverPeers(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	s := d.sess
	d.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("nats: %w", discovery.ErrNotStarted)
	}
	return s.discover(ctx)
}

// Stop unsubscribes, announces that self leaves, closes the connection and
// waits for the provider's goroutines and the client's closed callback. It
// is idempotent. Resources are released even when it returns an error (for
// example the leave announcement could not be flushed before ctx ended).
func (d *Discovery) Stop(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sess
	d.sess = nil
	if s == nil {
		return nil
	}
	return s.close(ctx)
}

// subjects are the per-cluster subjects derived from Config.Subject.
type subjects struct {
	announce, leave, discover string
}

// session is one Start..Stop lifetime: a connection, its subscriptions, the
// goroutine that serves them and the table of known peers.
type session struct {
	cfg     Config
	logger  *slog.Logger
	nc      *natsgo.Conn
	self    discovery.Self
	selfMsg []byte
	subj    subjects
	inbox   string // receives hello replies to our announcements
	msgs    chan *natsgo.Msg
	subs    []*natsgo.Subscription
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  chan struct{} // closed by the nats.go ClosedHandler
	// registered is set once nc, inbox and subs are in place; callbacks
	// that run earlier (a reconnect during Start) skip their work.
	registered atomic.Bool

	mu    sync.Mutex        // guards known
	known map[string]string // other nodes' name -> addr, from announcements and replies
}

func startSession(ctx context.Context, cfg Config, logger *slog.Logger, self discovery.Self) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats: start: %w", err)
	}
	selfMsg, err := encodeMember(self)
	if err != nil {
		return nil, fmt.Errorf("nats: start: %w", err)
	}
	s := &session{
		cfg:     cfg,
		logger:  logger.With("node", self.Name),
		self:    self,
		selfMsg: selfMsg,
		subj: subjects{
			announce: cfg.Subject + ".announce",
			leave:    cfg.Subject + ".leave",
			discover: cfg.Subject + ".discover",
		},
		msgs:   make(chan *natsgo.Msg, msgBuffer),
		stop:   make(chan struct{}),
		closed: make(chan struct{}),
		known:  make(map[string]string),
	}
	opts, err := s.options(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := opts.Connect()
	if err != nil {
		return nil, fmt.Errorf("nats: connect to %q: %w", cfg.URL, err)
	}
	s.nc = nc
	s.inbox = nc.NewInbox()
	s.wg.Go(s.run)
	if err := s.register(ctx); err != nil {
		return nil, errors.Join(err, s.close(ctx))
	}
	s.registered.Store(true)
	return s, nil
}

// options builds the nats.go options: Config settings, then the user's
// Options, then the settings this provider depends on.
func (s *session) options(ctx context.Context) (natsgo.Options, error) {
	opts := natsgo.GetDefaultOptions()
	opts.Servers = serverList(s.cfg.URL)
	opts.Name = "distcache-discovery " + s.self.Name
	opts.Timeout = s.cfg.ConnectTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < opts.Timeout {
		opts.Timeout = max(time.Until(dl), time.Millisecond)
	}
	opts.MaxReconnect = s.cfg.MaxReconnects
	opts.ReconnectWait = s.cfg.ReconnectWait
	for _, o := range s.cfg.Options {
		if err := o(&opts); err != nil {
			return opts, fmt.Errorf("nats: option: %w", err)
		}
	}
	opts.RetryOnFailedConnect = false
	opts.NoCallbacksAfterClientClose = false

	userClosed := opts.ClosedCB
	opts.ClosedCB = func(nc *natsgo.Conn) {
		if userClosed != nil {
			userClosed(nc)
		}
		close(s.closed)
	}
	userReconnected := opts.ReconnectedCB
	opts.ReconnectedCB = func(nc *natsgo.Conn) {
		s.logger.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted())
		if s.registered.Load() {
			if err := s.announce(); err != nil {
				s.logger.Warn("nats: announce after reconnect", "err", err)
			}
		}
		if userReconnected != nil {
			userReconnected(nc)
		}
	}
	userErr := opts.AsyncErrorCB
	opts.AsyncErrorCB = func(nc *natsgo.Conn, sub *natsgo.Subscription, err error) {
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		s.logger.Warn("nats: async error", "subject", subject, "err", err)
		if userErr != nil {
			userErr(nc, sub, err)
		}
	}
	return opts, nil
}

// register subscribes to the cluster subjects and the hello inbox, then
// announces self.
func (s *session) register(ctx context.Context) error {
	for _, subject := range []string{s.subj.discover, s.subj.announce, s.subj.leave, s.inbox} {
		sub, err := s.nc.ChanSubscribe(subject, s.msgs)
		if err != nil {
			return fmt.Errorf("nats: subscribe %q: %w", subject, err)
		}
		s.subs = append(s.subs, sub)
	}
	if err := s.announce(); err != nil {
		return err
	}
	fctx, cancel := s.flushContext(ctx)
	defer cancel()
	if err := s.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("nats: start: flush: %w", err)
	}
	return nil
}

// flushContext returns ctx, bounded by ConnectTimeout when ctx has no
// deadline (nats.go requires one for FlushWithContext).
func (s *session) flushContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.ConnectTimeout)
}

// announce tells every node about self; their hello replies come back on
// s.inbox so that this node learns of them without waiting for a poll.
func (s *session) announce() error {
	if err := s.nc.PublishRequest(s.subj.announce, s.inbox, s.selfMsg); err != nil {
		return fmt.Errorf("nats: announce: %w", err)
	}
	return nil
}

// run serves the subscriptions until close.
func (s *session) run() {
	for {
		select {
		case <-s.stop:
			return
		case m := <-s.msgs:
			s.handle(m)
		}
	}
}

func (s *session) handle(msg *natsgo.Msg) {
	m, err := decodeMember(msg.Data)
	if err != nil {
		s.logger.Debug("nats: dropped message", "subject", msg.Subject, "err", err)
		return
	}
	switch msg.Subject {
	case s.subj.discover, s.subj.announce:
		s.learn(m)
		if msg.Reply != "" && (msg.Subject == s.subj.discover || m.Name != s.self.Name) {
			if err := s.nc.Publish(msg.Reply, s.selfMsg); err != nil {
				s.logger.Debug("nats: reply", "subject", msg.Subject, "err", err)
			}
		}
	case s.subj.leave:
		s.mu.Lock()
		delete(s.known, m.Name)
		s.mu.Unlock()
	case s.inbox:
		s.learn(m)
	}
}

// learn records another node in the known table.
func (s *session) learn(m member) {
	if m.Name == s.self.Name {
		return
	}
	s.mu.Lock()
	s.known[m.Name] = m.Addr
	s.mu.Unlock()
}

// knownPeers returns a copy of the known table.
func (s *session) knownPeers() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := make(map[string]string, len(s.known))
	for k, v := range s.known {
		cp[k] = v
	}
	return cp
}

// allKnownReplied reports whether every known peer is in replied.
func (s *session) allKnownReplied(replied map[string]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.known {
		if _, ok := replied[name]; !ok {
			return false
		}
	}
	return true
}

func (s *session) discover(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats: discover: %w", err)
	}
	switch {
	case s.nc.IsClosed():
		return nil, fmt.Errorf("nats: discover: %w", natsgo.ErrConnectionClosed)
	case !s.nc.IsConnected():
		// Reconnecting: a request now would only gather silence.
		return nil, fmt.Errorf("nats: discover: %w", natsgo.ErrConnectionReconnecting)
	}
	hard := time.Now().Add(s.cfg.Timeout)
	fullWindow := true
	if dl, ok := ctx.Deadline(); ok && dl.Before(hard) {
		hard, fullWindow = dl, false
	}
	replies := make(chan *natsgo.Msg, replyBuffer)
	sub, err := s.nc.ChanSubscribe(s.nc.NewInbox(), replies)
	if err != nil {
		return nil, fmt.Errorf("nats: discover: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishRequest(s.subj.discover, sub.Subject, s.selfMsg); err != nil {
		return nil, fmt.Errorf("nats: discover: request: %w", err)
	}

	replied := make(map[string]string)
	var last time.Time
	timer := time.NewTimer(time.Until(hard))
	defer timer.Stop()
gather:
	for {
		end := hard
		if len(replied) > 0 && s.allKnownReplied(replied) {
			if q := last.Add(s.cfg.QuietPeriod); q.Before(end) {
				end = q
			}
		}
		wait := time.Until(end)
		if wait <= 0 {
			break gather
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				break gather // the caller's deadline ends the window
			}
			return nil, fmt.Errorf("nats: discover: %w", ctx.Err())
		case <-timer.C:
			continue // the loop re-evaluates the window's end
		case msg := <-replies:
			m, err := decodeMember(msg.Data)
			if err != nil {
				s.logger.Debug("nats: dropped reply", "err", err)
				continue
			}
			replied[m.Name] = m.Addr
			last = time.Now()
		}
	}

	s.mu.Lock()
	if fullWindow && !time.Now().Before(hard) {
		// A whole Timeout passed: known peers that did not reply are gone
		// (crashed without a leave). Forget them so that the next call can
		// end early again.
		for name := range s.known {
			if _, ok := replied[name]; !ok {
				delete(s.known, name)
			}
		}
	}
	peers := make([]string, 0, len(replied))
	for name, addr := range replied {
		if name != s.self.Name {
			s.known[name] = addr
		}
		peers = append(peers, addr)
	}
	s.mu.Unlock()
	slices.Sort(peers)
	return slices.Compact(peers), nil
}

// close deregisters and releases everything; it always releases, and
// reports what failed.
func (s *session) close(ctx context.Context) error {
	var errs []error
	// A closed connection (reconnect attempts ran out) has nothing left to
	// deregister: the server dropped its subscriptions already.
	if !s.nc.IsClosed() {
		errs = s.deregister(ctx)
	}
	s.nc.Close()
	close(s.stop)
	s.wg.Wait()
	select {
	case <-s.closed:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("nats: stop: waiting for the client to close: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// deregister unsubscribes and announces that self leaves.
func (s *session) deregister(ctx context.Context) []error {
	var errs []error
	for _, sub := range s.subs {
		if err := sub.Unsubscribe(); err != nil {
			errs = append(errs, fmt.Errorf("nats: stop: unsubscribe %q: %w", sub.Subject, err))
		}
	}
	if err := s.nc.Publish(s.subj.leave, s.selfMsg); err != nil {
		return append(errs, fmt.Errorf("nats: stop: announce leave: %w", err))
	}
	fctx, cancel := s.flushContext(ctx)
	defer cancel()
	if err := s.nc.FlushWithContext(fctx); err != nil {
		errs = append(errs, fmt.Errorf("nats: stop: flush leave: %w", err))
	}
	return errs
}
