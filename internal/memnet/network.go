package memnet

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/hashicorp/memberlist"
)

const (
	// firstPort is the first port handed out for port 0; ephemeral (dialing) ports start
	// at firstEphemeral, so the two never meet in a test-sized network.
	firstPort      = 7000
	firstEphemeral = 40000
	// packetQueue is how many datagrams wait for a host before more are dropped.
	packetQueue = 1024
	// acceptBacklog is how many dialed connections wait for a host's StreamCh reader.
	acceptBacklog = 128
)

// Network is a set of hosts that reach each other by address. The zero value is not
// usable: call [New].
type Network struct {
	mu       sync.Mutex // guards hosts, nextPort, nextEph
	hosts    map[netip.AddrPort]*Host
	nextPort uint16
	nextEph  uint16
}

// New returns an empty network.
func New() *Network {
	return &Network{hosts: make(map[netip.AddrPort]*Host), nextPort: firstPort, nextEph: firstEphemeral}
}

// Listen creates a host bound to ip:port. Port 0 picks a free port (read it with
// [Host.GetAutoBindPort]); an unspecified ip ("0.0.0.0", "::") binds 127.0.0.1, the one
// address a test network needs. A bound ip:port is refused until its host shuts down.
func (n *Network) Listen(ip string, port int) (*Host, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("memnet: listen: %q is not an IP address", ip)
	}
	if a.IsUnspecified() {
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("memnet: listen: port %d out of range 0..65535", port)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 {
		for {
			ap := netip.AddrPortFrom(a, n.nextPort)
			n.nextPort++
			if _, used := n.hosts[ap]; !used {
				port = int(ap.Port())
				break
			}
		}
	}
	ap := netip.AddrPortFrom(a, uint16(port))
	if _, used := n.hosts[ap]; used {
		return nil, fmt.Errorf("memnet: listen %s: %w", ap, syscall.EADDRINUSE)
	}
	h := &Host{
		n:       n,
		addr:    ap,
		packets: make(chan *memberlist.Packet, packetQueue),
		streams: make(chan net.Conn, acceptBacklog),
		done:    make(chan struct{}),
	}
	n.hosts[ap] = h
	return h, nil
}

// lookup returns the live host bound to addr.
func (n *Network) lookup(addr string) (*Host, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("memnet: bad address %q: %w", addr, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hosts[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
	if h == nil {
		return nil, fmt.Errorf("memnet: dial %s: %w", addr, syscall.ECONNREFUSED)
	}
	return h, nil
}

// ephemeral returns a fresh source address on ip for an outgoing connection.
func (n *Network) ephemeral(ip netip.Addr) netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.nextEph
	n.nextEph++
	if n.nextEph == 0 {
		n.nextEph = firstEphemeral
	}
	return netip.AddrPortFrom(ip, p)
}

func (n *Network) remove(h *Host) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hosts[h.addr] == h {
		delete(n.hosts, h.addr)
	}
}
