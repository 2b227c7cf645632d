package memnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// Host is one bound address of a [Network]. It has the methods of memberlist's
// NetTransport that the transport uses, plus [Host.DialContext] for RPC connections.
type Host struct {
	n       *Network
	addr    netip.AddrPort
	packets chan *memberlist.Packet
	streams chan net.Conn

	closeOnce sync.Once
	done      chan struct{} // closed by Shutdown
}

// GetAutoBindPort returns the bound port.
func (h *Host) GetAutoBindPort() int { return int(h.addr.Port()) }

// Addr returns the bound "ip:port".
func (h *Host) Addr() string { return h.addr.String() }

// FinalAdvertiseAddr returns ip (or the bound IP when empty) and port (or the bound port
// when 0), as NetTransport does for an explicit address.
func (h *Host) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	adv := net.IP(h.addr.Addr().AsSlice())
	if ip != "" {
		if adv = net.ParseIP(ip); adv == nil {
			return nil, 0, fmt.Errorf("memnet: advertise address %q is not an IP address", ip)
		}
	}
	if port == 0 {
		port = h.GetAutoBindPort()
	}
	return adv, port, nil
}

// WriteToAddress sends the datagram b to a.Addr. Like UDP it never blocks: the datagram is
// dropped when nobody is bound there or the receiver's queue is full.
func (h *Host) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if h.closed() {
		return now, fmt.Errorf("memnet: write to %s: %w", a.Addr, net.ErrClosed)
	}
	dst, err := h.n.lookup(a.Addr)
	if err != nil {
		return now, nil // datagrams to nobody vanish
	}
	p := &memberlist.Packet{
		Buf:       append([]byte(nil), b...),
		From:      net.UDPAddrFromAddrPort(h.addr),
		Timestamp: now,
	}
	select {
	case dst.packets <- p:
	default:
	}
	return now, nil
}

// PacketCh delivers the datagrams sent to this host.
func (h *Host) PacketCh() <-chan *memberlist.Packet { return h.packets }

// StreamCh delivers the connections dialed to this host.
func (h *Host) StreamCh() <-chan net.Conn { return h.streams }

// DialAddressTimeout dials a.Addr, giving up after timeout (0: no limit).
func (h *Host) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return h.DialContext(ctx, a.Addr)
}

// DialContext connects to the host bound to addr. It fails with ECONNREFUSED when nobody
// is bound there and waits (bounded by ctx) only while that host's accept backlog is full.
func (h *Host) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if h.closed() {
		return nil, fmt.Errorf("memnet: dial %s: %w", addr, net.ErrClosed)
	}
	dst, err := h.n.lookup(addr)
	if err != nil {
		return nil, err
	}
	src := h.n.ephemeral(h.addr.Addr())
	client, server := newPipe(net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst.addr))
	select {
	case dst.streams <- server:
		if !dst.closed() {
			return client, nil
		}
		err = syscall.ECONNREFUSED // shut down meanwhile, perhaps after draining its backlog
	case <-dst.done:
		err = syscall.ECONNREFUSED
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = client.Close()
	_ = server.Close()
	return nil, fmt.Errorf("memnet: dial %s: %w", addr, err)
}

// Shutdown unbinds the host: dials to it are refused, datagrams to it are dropped, and
// connections still waiting in its backlog are closed. Connections already taken from
// StreamCh or dialed from it stay open (their owners close them). Idempotent.
func (h *Host) Shutdown() error {
	h.closeOnce.Do(func() {
		close(h.done)
		h.n.remove(h)
		for {
			select {
			case c := <-h.streams:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (h *Host) closed() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}
