package nats

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/distcache/distcache/discovery"
)

// protocolVersion is the "v" field of every message this package sends.
// Receivers accept any version >= 1 and read the fields they know.
const protocolVersion = 1

// maxMessageBytes bounds the payloads decoded; larger ones are dropped.
const maxMessageBytes = 4 << 10

// errBadMessage is wrapped by decodeMember errors.
var errBadMessage = errors.New("nats: malformed message")

// member is the JSON payload of announce, leave and discovery replies, and
// of the body of discovery requests (the requester's own identity).
type member struct {
	V    int    `json:"v"`
	Name string `json:"name"`
	Addr string `json:"addr"`
}

func encodeMember(self discovery.Self) ([]byte, error) {
	return json.Marshal(member{V: protocolVersion, Name: self.Name, Addr: self.Addr})
}

// decodeMember parses and checks a payload; it never panics on bad input.
func decodeMember(data []byte) (member, error) {
	if len(data) > maxMessageBytes {
		return member{}, fmt.Errorf("%w: %d bytes exceeds %d", errBadMessage, len(data), maxMessageBytes)
	}
	var m member
	if err := json.Unmarshal(data, &m); err != nil {
		return member{}, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	if m.V < 1 {
		return member{}, fmt.Errorf("%w: version %d", errBadMessage, m.V)
	}
	if m.Name == "" {
		return member{}, fmt.Errorf("%w: empty name", errBadMessage)
	}
	if err := checkAddr(m.Addr); err != nil {
		return member{}, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	return m, nil
}

// checkAddr requires host:port with a non-empty, specified host and a port
// in 1..65535: an address other nodes can dial.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("address %q has an unspecified host; announce a reachable address", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("address %q has an invalid port", addr)
	}
	return nil
}
