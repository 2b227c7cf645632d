// Package transport carries both memberlist's gossip and distcache's peer-to-peer RPCs on
// one port per node.
//
// # One port, two protocols
//
// A [Transport] wraps memberlist's NetTransport and implements
// memberlist.NodeAwareTransport, so it is set as memberlist.Config.Transport. UDP packets
// pass through untouched (except when [Transport.SetBlocked] drops them). Every accepted
// TCP connection is classified by its first byte, on its own goroutine and under
// HandshakeTimeout (NetTransport's accept loop blocks on an unbuffered channel, so it is
// never done inline): memberlist streams start with a message type (0-13) or a label
// header (244) and are handed to memberlist with that byte replayed; RPC connections start
// with the magic byte 0xC3.
//
// Memberlist does not learn the kernel-chosen port of a custom transport: set
// memberlist.Config.AdvertisePort to [Transport.BoundPort], and use the same Label in
// both configs. The RPC address of a member is then simply its memberlist address.
//
// # Handshake
//
// The client opens each RPC connection with
//
//	0xC3 | u8 version (3) | u8 flags (bit 0: TLS follows, bit 1: secret) | u8 label length | label | [32-byte nonce]
//
// and the server answers 0xC3 | u8 status (OK, bad label, bad version, TLS required, TLS
// unavailable, shutting down, bad flags, secret required, secret unavailable), followed by
// its own 32-byte nonce when both have a secret, and closes the connection unless OK. A label
// mismatch surfaces as [ErrLabelMismatch]: it keeps nodes of different clusters that share
// a network (recycled IPs) from talking to each other, which memberlist's own label check
// cannot do for connections it never sees. With TLS configured both sides then run a TLS
// handshake (mutual if the server sets ClientAuth). The client then names itself
// (u8 length | Config.NodeName, inside TLS when it is on), and with Config.AuthSecret both
// sides prove the secret: an HMAC-SHA256 over the nonces, flags, label, the client's name
// and the TLS session's exported keying material, under a key derived from the secret
// (auth.go); a failure surfaces as [ErrAuthFailed]. Frames flow only after all of that,
// inside TLS when it is on, and the whole handshake must finish within HandshakeTimeout of
// the accept. The server hands the name to its Handler as [Request].From of every request
// on the connection; identity.go says what it proves in each mode.
// [Transport.Probe] runs the handshake alone: the cluster admits a member into its ring only
// after one succeeds.
//
// # Frames
//
// Both directions use the same 20-byte big-endian header followed by the payload:
//
//	u32 payload length | u8 type | u8 code | u16 flags | u64 request id | u32 budget µs
//
// Types are REQ (code = op, budget = the caller's remaining ctx time, 0 = none), RESP
// (code = application status), ERR (a transport failure of one request: overloaded,
// shutting down, no handler, frame too large, handler panic), CANCEL, PING/PONG and
// GOAWAY. A REQ may carry the caller's trace context (Request.Trace): bit 15 of its flags
// is then set and the payload starts with u16 length | trace bytes (at most MaxTraceBytes,
// or the frame is malformed); without it the frame has no such field, so untraced calls
// cost nothing extra. A frame larger than MaxFrameBytes is refused: the client checks before sending,
// the server answers ERR and closes the connection. Malformed frames close the connection
// with [ErrBadFrame]; the decoders are fuzzed.
//
// # Client side
//
// Each peer address has a pool of ConnsPerPeer long-lived connections, dialed lazily by
// one background dial at a time; callers wait for that dial (or their ctx). After a failed
// dial the peer is in backoff (50 ms doubling to 1 s) and Calls fail at once with
// [ErrPeerUnavailable] instead of hanging. A Call takes an in-flight slot
// (MaxInflightPerPeer; waiting for one ends with [ErrPeerOverloaded] when ctx does),
// registers a pending entry under a fresh request id, queues its REQ frame and waits. One
// reader goroutine per connection routes RESP and ERR frames to the pending entries; if the
// caller's ctx ends first, the entry is removed, a CANCEL frame is sent and the late
// response is dropped. An explicit deadline ([Transport.CallDeadline]) is kept in the
// pending entry instead of a timer: one sweeper goroutine per transport sleeps until the
// earliest deadline it knows of, then fails the entries past their deadline (and sends
// their CANCEL) and plans its next scan at the earliest deadline left.
//
// One writer goroutine per connection owns the socket. Senders append encoded frames to a
// shared buffer and wake it; it yields briefly while more frames keep arriving, then writes
// everything queued with a single Write under WriteTimeout. A lone frame on an idle
// connection goes out at once (no Nagle-style delay); a busy connection carries dozens of
// frames per syscall.
//
// # Server side
//
// The accepting goroutine becomes the connection's reader. Each REQ is admitted against
// MaxConcurrentRequests (when full it is answered ERR overloaded at once: the reader never
// stops reading, so one slow request cannot block the connection) and served by the
// [Handler] on a goroutine of its own (a worker kept from an earlier request when one is
// waiting) under a context that carries the caller's deadline and
// is cancelled by CANCEL, a broken connection or Shutdown. That context is allocated with
// the request and only arms a timer if someone waits on Done. A Handler may also implement
// [InlineHandler] to answer cheap requests (cache hits) on the reader goroutine, skipping
// the goroutine altogether.
//
// # Limits
//
// Every accepted connection counts against MaxConnsPerIP until it closes and against
// MaxPendingConns until its handshake is done; beyond either it is closed at once, before a
// goroutine is spent on it. Nothing before authentication is sized by the peer beyond the
// 255-byte label. Payload buffers grow as bytes arrive, never from the header's length
// alone; a payload over 64 KiB first reserves its length from the node-wide
// MaxReceiveBufferBytes (bookkeeping, so a few frames that can complete get it rather than
// many that each hold a part) and must arrive within ReadTimeout. A server stops reading a
// connection whose queued replies reach MaxQueuedBytesPerConn until its writer drains them,
// so a client that never reads gets TCP backpressure, then is disconnected after
// WriteTimeout; keepalive answers are dropped beyond that mark. Accepted connections that
// serve no request for IdleTimeout get GOAWAY and are closed (pings do not count).
//
// # Liveness and shutdown
//
// Every KeepaliveInterval each side pings each of its RPC connections; the reader's
// deadline is pushed forward by whatever arrives, so a connection that hears nothing for
// about three intervals (half-open, peer frozen) fails and client pools redial on the next
// Call. [Transport.ClosePeer] drops a departed peer's pool. [Transport.Drain] refuses new
// requests with [ErrShuttingDown] (and tells clients with GOAWAY) while in-flight handlers
// finish; [Transport.Shutdown], which memberlist's Shutdown calls, closes everything and
// returns only after every goroutine the transport started, handlers included, has exited.
package transport
