// Package ctlapi is the control protocol between the chaos driver and its
// node processes: the ready line a node prints, the HTTP endpoints through
// which the driver makes calls on a node's engine and reads its counters,
// and the value format both sides agree on.
package ctlapi

import (
	"fmt"
	"strings"

	"github.com/distcache/distcache/chaos/internal/stall"
)

// The node's HTTP endpoints.
const (
	// PathOp runs one engine call: query op (get, put, delete), key,
	// version (put) and timeout_ms (the call's context deadline). The
	// answer is an OpResult, always with status 200 when the node handled
	// it (engine errors are in the body).
	PathOp = "/op"
	// PathStatus answers a Status.
	PathStatus = "/status"
)

// Ops, as the op query parameter spells them.
const (
	OpGet    = "get"
	OpPut    = "put"
	OpDelete = "delete"
)

// Error classes in OpResult.Err: the engine error an answer carried.
const (
	ErrPeerUnavailable = "peer_unavailable"
	ErrDeadline        = "deadline"
	ErrStopped         = "stopped"
	ErrNotStarted      = "not_started"
	ErrNotFound        = "not_found"
	ErrRemote          = "remote"
	ErrRejected        = "rejected"
	ErrOther           = "other"
	// ErrTransport is the driver's class for a node that did not answer.
	ErrTransport = "transport"
)

// SecretEnv names the environment variable that carries the cluster's
// gossip secret (hex) from the driver to its nodes.
const SecretEnv = "CHAOSNODE_SECRET"

// KeySpace is the one keyspace every node serves.
const KeySpace = "chaos"

// OpResult is a node's answer to PathOp.
type OpResult struct {
	OK bool `json:"ok"`
	// Value is what a Get returned.
	Value string `json:"value,omitempty"`
	// Err is an error class, Msg the error's text.
	Err string `json:"err,omitempty"`
	Msg string `json:"msg,omitempty"`
}

// Status is a node's answer to PathStatus: what the driver needs to tell
// whether the node serves on the full ring, and its DataSource traffic.
type Status struct {
	Name string `json:"name"`
	// RingMembers and Fingerprint describe the node's current ring: every
	// node agrees on owners when all report the same fingerprint.
	RingMembers int    `json:"ring_members"`
	Fingerprint uint64 `json:"fingerprint"`
	// Fetches are the DataSource calls this process made; Degraded the
	// loads it made itself because the owner could not serve.
	Fetches  int64 `json:"fetches"`
	Degraded int64 `json:"degraded"`
	Entries  int64 `json:"entries"`
	// Stalls are the last times this process was not scheduled (see
	// package stall).
	Stalls []stall.Interval `json:"stalls,omitempty"`
}

// readyPrefix starts the one line a node prints on stdout once its engine
// has started and its control API listens.
const readyPrefix = "CHAOSNODE READY "

// ReadyLine formats the ready line.
func ReadyLine(gossipAddr, controlAddr string) string {
	return fmt.Sprintf("%sgossip=%s control=%s", readyPrefix, gossipAddr, controlAddr)
}

// ParseReady parses a ready line; ok is false for any other line.
func ParseReady(line string) (gossipAddr, controlAddr string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(line), readyPrefix)
	if !found {
		return "", "", false
	}
	for f := range strings.FieldsSeq(rest) {
		if v, found := strings.CutPrefix(f, "gossip="); found {
			gossipAddr = v
		} else if v, found := strings.CutPrefix(f, "control="); found {
			controlAddr = v
		}
	}
	return gossipAddr, controlAddr, gossipAddr != "" && controlAddr != ""
}
