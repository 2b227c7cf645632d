package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fuzzServer is a transport under fuzzing, with a stand-in for memberlist that takes the
// non-RPC connections and closes them.
func fuzzServer(f *testing.F, secret []byte) *Transport {
	srv := newTestTransport(f, func(c *Config) {
		c.Handler = inlineEcho{} // op 1 inline, op 2 panics inline, others on a goroutine
		c.AuthSecret = secret
		c.MaxFrameBytes = 256 << 10
		c.HandshakeTimeout = 2 * time.Second
		c.ReadTimeout = 2 * time.Second
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case c := <-srv.StreamCh():
				_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
				_ = c.Close()
			case <-stop:
				return
			}
		}
	})
	f.Cleanup(func() { close(stop); wg.Wait() })
	return srv
}

// FuzzServerConn feeds arbitrary bytes through a real server connection, before the
// handshake (mode 0), after a valid plaintext handshake (mode 1) and after a valid
// handshake authenticated by the secret (mode 2). The server must not crash, must close the
// connection once the input ends, and must be left with no connection, handler or budget
// held, still serving a legitimate client.
func FuzzServerConn(f *testing.F) {
	plain := fuzzServer(f, nil)
	authed := fuzzServer(f, secretA)
	plainCli := newTestTransport(f, nil)
	authedCli := newTestTransport(f, func(c *Config) { c.AuthSecret = secretA })

	req := func(op byte, id uint64, payload string) []byte {
		return append(appendHeader(nil, frameHeader{typ: frameReq, code: op, id: id, length: uint32(len(payload))}), payload...)
	}
	f.Add(byte(0), appendHello(nil, hello{version: protoVersion, label: "test"}))
	f.Add(byte(0), []byte{0x01, 0x02, 0x03})
	f.Add(byte(0), appendName(appendHello(nil, hello{version: protoVersion, label: "test"}), "node-a"))
	f.Add(byte(0), appendHello(nil, hello{version: protoVersion, flags: hsFlagAuth | hsFlagTLS, label: "test"}))
	f.Add(byte(1), req(1, 1, "inline"))
	f.Add(byte(1), append(req(3, 1, "goroutine"), appendHeader(nil, frameHeader{typ: frameCancel, id: 1})...))
	f.Add(byte(1), req(2, 7, "panic"))
	f.Add(byte(1), appendHeader(nil, frameHeader{typ: framePing, id: 3}))
	f.Add(byte(1), appendHeader(nil, frameHeader{typ: frameReq, id: 1, length: 200 << 10}))
	f.Add(byte(1), appendHeader(nil, frameHeader{typ: frameReq, id: 1, length: 1 << 30}))
	f.Add(byte(1), tracedFrame(frameHeader{typ: frameReq, code: 3, id: 4}, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "traced"))
	f.Add(byte(1), append(appendHeader(nil, frameHeader{typ: frameReq, code: 1, id: 5, flags: frameFlagTrace, length: 2 + MaxTraceBytes + 1}), appendTraceFieldRaw(MaxTraceBytes+1)...))
	f.Add(byte(2), append(req(1, 1, "a"), req(1, 1, "dup")...))
	f.Add(byte(2), []byte{0xff, 0xff, 0xff, 0xff, 1})

	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		srv, cli := plain, plainCli
		if mode%3 == 2 {
			srv, cli = authed, authedCli
		}
		// The legitimate client's pooled connection, if any, stays open throughout.
		base := srv.Stats().OpenConns
		raw, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		conn := raw
		if mode%3 != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err = cli.clientHandshake(ctx, raw, addrOf(srv))
			cancel()
			if err != nil {
				t.Fatalf("valid handshake failed: %v", err)
			}
		}
		_, _ = conn.Write(data)
		_ = raw.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, conn); err != nil && !isReset(err) {
			t.Fatalf("server did not close the connection after the input ended: %v", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := srv.Stats()
			srv.mu.Lock()
			open := len(srv.sconns)
			srv.mu.Unlock()
			if open == base && s.OpenConns == base && s.PendingConns == 0 && s.ActiveHandlers == 0 && s.ReceiveBufferBytes == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server holds resources after the connection ended: %d RPC conns (%d before), %+v", open, base, s)
			}
			time.Sleep(time.Millisecond) // polling a condition, with the deadline above
		}
		resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 1, Payload: []byte("ok")})
		if err != nil || string(resp.Payload) != "ok" {
			t.Fatalf("server stopped serving: %v", err)
		}
	})
}

// isReset reports a connection reset: the server closed with our unread input pending.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
