package raw

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/distcache/distcache/bench/internal/hist"
)

// Frame layout: 4-byte big-endian length of the rest, 8-byte request id,
// payload. The echo server returns every frame unchanged.
const frameHeader = 12

// maxFrame bounds a frame's length field.
const maxFrame = 1 << 20

var errFrameTooLarge = errors.New("raw: frame too large")

type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex // guards conns
	cs map[net.Conn]struct{}
}

// startEcho listens on 127.0.0.1:0 and echoes frames. Replies are buffered
// and flushed only when no more request bytes are buffered, so replies to a
// pipelined burst leave in few writes.
func startEcho() (*echoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &echoServer{ln: ln, cs: map[net.Conn]struct{}{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cs[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c) })
		}
	})
	return s, nil
}

func (s *echoServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	buf := make([]byte, 4+maxFrame)
	for {
		if _, err := io.ReadFull(r, buf[:4]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(buf[:4])
		if n > maxFrame {
			return
		}
		if _, err := io.ReadFull(r, buf[4:4+n]); err != nil {
			return
		}
		if _, err := w.Write(buf[:4+n]); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func (s *echoServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.cs {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func frame(id uint64, payload int) []byte {
	b := make([]byte, frameHeader+payload)
	binary.BigEndian.PutUint32(b[:4], uint32(8+payload))
	binary.BigEndian.PutUint64(b[4:12], id)
	return b
}

func readFrame(r *bufio.Reader, buf []byte) (uint64, error) {
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(buf[:4])
	if n < 8 || int(n) > len(buf)-4 {
		return 0, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	if _, err := io.ReadFull(r, buf[4:4+n]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(buf[4:12]), nil
}

// TCPPipeline runs one connection with inflight requests of payload bytes in
// flight for d: a writer goroutine sends while it has credit and flushes
// when it runs out; a reader goroutine takes replies and returns credit.
// Every reply's round trip is recorded.
func TCPPipeline(ctx context.Context, inflight, payload int, d time.Duration) (Measurement, error) {
	srv, err := startEcho()
	if err != nil {
		return Measurement{}, err
	}
	defer srv.close()
	c, err := net.Dial("tcp", srv.ln.Addr().String())
	if err != nil {
		return Measurement{}, err
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	r := bufio.NewReaderSize(c, 64<<10)
	credit := make(chan struct{}, inflight)
	for range inflight {
		credit <- struct{}{}
	}
	sent := make([]time.Time, inflight) // by id % inflight; at most inflight outstanding, replies in order
	req := frame(0, payload)
	h := &hist.Histogram{}
	var ops int64
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, sys0 := CPUTime(), IOSyscalls()
	start := time.Now()
	writerDone := make(chan error, 1)
	go func() {
		var id uint64
		for {
			select {
			case <-credit:
			default:
				if err := w.Flush(); err != nil {
					writerDone <- err
					return
				}
				select {
				case <-credit:
				case <-stop:
					writerDone <- w.Flush()
					return
				}
			}
			select {
			case <-stop:
				credit <- struct{}{} // unused: give it back for the drain
				writerDone <- w.Flush()
				return
			default:
			}
			binary.BigEndian.PutUint64(req[4:12], id)
			sent[id%uint64(inflight)] = time.Now()
			if _, err := w.Write(req); err != nil {
				writerDone <- err
				return
			}
			id++
		}
	}()
	go func() {
		buf := make([]byte, 4+maxFrame)
		for {
			id, err := readFrame(r, buf)
			if err != nil {
				readerDone <- err
				return
			}
			h.Record(time.Since(sent[id%uint64(inflight)]))
			ops++
			credit <- struct{}{}
		}
	}()
	sleepCtx(ctx, d)
	close(stop)
	werr := <-writerDone
	elapsed := time.Since(start)
	// Drain: wait until every request sent has its reply (all credit back).
	deadline := time.After(5 * time.Second)
	for range inflight {
		select {
		case <-credit:
		case err := <-readerDone:
			return Measurement{}, fmt.Errorf("raw: pipeline reader: %w", err)
		case <-deadline:
			return Measurement{}, errors.New("raw: pipeline replies missing")
		}
	}
	m := Measurement{Elapsed: elapsed, Latency: h}
	m.Mallocs, m.CPU, m.Syscalls = since(&ms0, cpu0, sys0)
	_ = c.Close()
	<-readerDone
	if werr != nil {
		return Measurement{}, fmt.Errorf("raw: pipeline writer: %w", werr)
	}
	m.Ops = ops
	return m, nil
}

// TCPPingPong runs one connection with one request of payload bytes in
// flight at a time for d.
func TCPPingPong(ctx context.Context, payload int, d time.Duration) (Measurement, error) {
	srv, err := startEcho()
	if err != nil {
		return Measurement{}, err
	}
	defer srv.close()
	c, err := net.Dial("tcp", srv.ln.Addr().String())
	if err != nil {
		return Measurement{}, err
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	req := frame(0, payload)
	buf := make([]byte, 4+maxFrame)
	h := &hist.Histogram{}
	var ops int64
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, sys0 := CPUTime(), IOSyscalls()
	start := time.Now()
	end := start.Add(d)
	for id := uint64(0); ctx.Err() == nil; id++ {
		t0 := time.Now()
		if t0.After(end) {
			break
		}
		binary.BigEndian.PutUint64(req[4:12], id)
		if _, err := c.Write(req); err != nil {
			return Measurement{}, err
		}
		got, err := readFrame(r, buf)
		if err != nil {
			return Measurement{}, err
		}
		if got != id {
			return Measurement{}, fmt.Errorf("raw: ping-pong reply %d for request %d", got, id)
		}
		h.Record(time.Since(t0))
		ops++
	}
	m := Measurement{Ops: ops, Elapsed: time.Since(start), Latency: h}
	m.Mallocs, m.CPU, m.Syscalls = since(&ms0, cpu0, sys0)
	return m, nil
}
