package transport

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"time"

	"github.com/distcache/distcache/internal/memnet"
	"github.com/hashicorp/memberlist"
)

// network is what a Transport needs from the network below it: memberlist's NetTransport
// on real sockets, or a memnet.Host when Config.Network is set (tests).
type network interface {
	FinalAdvertiseAddr(ip string, port int) (net.IP, int, error)
	WriteToAddress(b []byte, a memberlist.Address) (time.Time, error)
	DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error)
	PacketCh() <-chan *memberlist.Packet
	StreamCh() <-chan net.Conn
	Shutdown() error
	GetAutoBindPort() int
	// DialContext opens an RPC connection to addr.
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}

var (
	_ network = (*socketNetwork)(nil)
	_ network = (*memnet.Host)(nil)
)

// listen binds cfg.BindAddr:cfg.BindPort on cfg.Network, or on real TCP and UDP sockets
// through memberlist's NetTransport when it is nil.
func listen(cfg Config) (network, error) {
	if cfg.Network != nil {
		h, err := cfg.Network.Listen(cfg.BindAddr, cfg.BindPort)
		if err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
		return h, nil
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{cfg.BindAddr},
		BindPort:  cfg.BindPort,
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	return &socketNetwork{NetTransport: nt}, nil
}

// socketNetwork is memberlist's NetTransport plus TCP dials for RPC connections.
type socketNetwork struct {
	*memberlist.NetTransport
}

func (*socketNetwork) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}}
	return d.DialContext(ctx, "tcp", addr)
}
