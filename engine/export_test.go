package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/distcache/distcache/internal/transport"
)

// Raw peer messages for engine_test's wire clients, encoded as the engine
// encodes them, and the state they would change.

const StatusNotMember = statusNotMember

func LeavingRequest(name string) transport.Request {
	return transport.Request{Op: opLeaving, Payload: encodeName(name)}
}

func FlushRequest(name string) transport.Request {
	return transport.Request{Op: opFlush, Payload: encodeFlush(name, time.Now())}
}

func HandoffRequest(ks, from, key string, value []byte) transport.Request {
	return transport.Request{Op: opHandoff, Payload: encodeHandoff(ks, from, []handoffEntry{{Entry: Entry{Key: key, Value: value}, ver: 1}})}
}

func InvalidateRequest(ks, from string, keys ...string) transport.Request {
	return transport.Request{Op: opInvalidate, Payload: encodeInvalidate(ks, from, 1, keys)}
}

func GetRequest(ks, key string) transport.Request {
	return transport.Request{Op: opGet, Payload: encodeKeys(ks, []string{key})}
}

// ReplicateRequest is an owner's replica write of key, sent by from.
func ReplicateRequest(ks, from, key string, value []byte) transport.Request {
	p := encodeReplicate(ks, from, replicaWrite, []replicaItem{{Entry: Entry{Key: key, Value: value}, tag: uint64(time.Now().UnixNano())}})
	return transport.Request{Op: opReplicate, Payload: withWriteDeadline(time.Now().Add(time.Minute), p)}
}

// ReplicateRefused decodes an opReplicate answer: whether items were
// refused because the receiver does not hold their keys.
func ReplicateRefused(payload []byte) bool {
	return errors.Is(decodeReplicateAnswer("peer", payload), errNotHolder)
}

// PutRequest is a Put of key forwarded to its receiver as the owner.
func PutRequest(ks, key string, value []byte) transport.Request {
	p := encodePut(ks, []Entry{{Key: key, Value: value}})
	return transport.Request{Op: opPut, Payload: withWriteDeadline(time.Now().Add(time.Minute), p)}
}

func DeleteKeySpaceRequest(ks string) transport.Request {
	return transport.Request{Op: opDeleteKeySpace, Payload: encodeName(ks)}
}

// RingChangedAt is when e last opened a hand-off window (unix ns).
func (e *Engine) RingChangedAt() int64 { return e.ringChangedAt.Load() }

// LeftGracefully reports whether e recorded name's announcement of a
// graceful leave.
func (e *Engine) LeftGracefully(name string) bool { return e.leftGracefully(name) }

// HandoffWindow is how long after a ring change a node takes hand-offs.
const HandoffWindow = handoffWindow

// SetSettleWindow shortens how long after a ring change e's writes still
// invalidate every member, so that tests of targeted invalidation need not
// wait for the cluster's start to be that long ago.
func SetSettleWindow(e *Engine, d time.Duration) { e.settle.Store(int64(d)) }

// HoldForwardAnswers makes every forward's answer wait for hold(key) before
// it is kept or handed to the Gets that joined it, until t ends.
func HoldForwardAnswers(t interface{ Cleanup(func()) }, hold func(key string)) {
	forwardAnswered.Store(&hold)
	t.Cleanup(func() { forwardAnswered.Store(nil) })
}

// HoldInvalidations makes every invalidation received wait for
// hold(node), node being the receiver's name, until t ends.
func HoldInvalidations(t interface{ Cleanup(func()) }, hold func(node string)) {
	invalidationReceived.Store(&hold)
	t.Cleanup(func() { invalidationReceived.Store(nil) })
}

// Missed reports whether e is to tell name to flush (a write of e's
// could not invalidate it).
func (e *Engine) Missed(name string) bool { return e.missed.pending(name) }

// HoldWrite claims key in e's keyspace ks as a write in progress would,
// until release is called.
func HoldWrite(e *Engine, ks, key string) (release func()) {
	st, err := e.keyspace(ks)
	if err != nil {
		panic(err)
	}
	release, err = st.pending.claim(context.Background(), []string{key})
	if err != nil {
		panic(err)
	}
	return release
}

// Push hands e an owner's push of key (sent by from, stored there at
// version ver), as opPush would.
func Push(e *Engine, ks, from, key string, value []byte, ver uint64) {
	st, err := e.keyspace(ks)
	if err != nil {
		panic(err)
	}
	e.servePush(st, handoffRequest{keyspace: ks, from: from, entries: []handoffEntry{{Entry: Entry{Key: key, Value: value}, ver: ver}}})
}

// NearTombstone returns the store version carried by e's tombstone of key
// in its near cache, if it holds one.
func NearTombstone(e *Engine, ks, key string) (uint64, bool) {
	st, err := e.keyspace(ks)
	if err != nil {
		panic(err)
	}
	ent, ok := st.near.Peek(key)
	if !ok || !ent.Negative || len(ent.Value) != nearTombstoneLen {
		return 0, false
	}
	return binary.BigEndian.Uint64(ent.Value[nearTagLen:]), true
}

// StopPushes makes owners skip the push of written values until t ends.
func StopPushes(t interface{ Cleanup(func()) }) {
	pushesOff.Store(true)
	t.Cleanup(func() { pushesOff.Store(false) })
}

// InvalidationLines is the number of members e has invalidations in flight
// to or waiting for (invalidate_batch.go).
func InvalidationLines(e *Engine) int {
	e.invalidations.mu.Lock()
	defer e.invalidations.mu.Unlock()
	return len(e.invalidations.lines)
}
