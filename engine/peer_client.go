package engine

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/internal/transport"
)

// peers is the engine's one client of other members: a method per
// operation encodes its request (wire.go), sends it and turns the answer's
// status into an error. A failure to reach the peer comes back as the
// transport's error, an answer as a status error (isRemote tells them
// apart). The serving side of every method is one case of serveRPC. Every
// request carries the caller's trace context when ctx holds a sampled span
// (see observer.outgoing).
type peers struct {
	cl  *membership.Cluster
	obs *observer
}

// send makes one call, bounded by ctx and, when not zero, by deadline.
func (p peers) send(ctx context.Context, m cluster.Member, req transport.Request, deadline time.Time) ([]byte, error) {
	ctx, done := p.obs.outgoing(ctx, m, &req)
	resp, err := p.cl.CallDeadline(ctx, m, req, deadline)
	if err == nil {
		err = errorOf(m.Name, resp.Status, resp.Payload)
	}
	done(err)
	if err != nil {
		return nil, err
	}
	return resp.Payload, nil
}

// get reads key from m, its owner. With withExpiry the answer carries the
// entry's expiry ahead of the value (see splitExpiry).
func (p peers) get(ctx context.Context, m cluster.Member, ks, key string, withExpiry bool, deadline time.Time) ([]byte, error) {
	req := transport.Request{Op: opGet, Payload: encodeKeys(ks, []string{key})}
	if withExpiry {
		req.Flags = getFlagExpiry
	}
	return p.send(ctx, m, req, deadline)
}

// getMany reads keys from m, their owner: one result per key, in order.
func (p peers) getMany(ctx context.Context, m cluster.Member, ks string, keys []string) ([]result, error) {
	payload, err := p.send(ctx, m, transport.Request{Op: opGetMany, Payload: encodeKeys(ks, keys)}, time.Time{})
	if err != nil {
		return nil, err
	}
	return decodeResults(payload, len(keys))
}

// write applies a group of Puts or Deletes (kind) on m, their owner,
// which refuses it after deadline: one result per entry, in order.
func (p peers) write(ctx context.Context, m cluster.Member, ks string, group []Entry, kind writeKind, deadline time.Time) ([]result, error) {
	req := transport.Request{Op: opPut}
	if kind == writeDelete {
		req.Op, req.Payload = opDelete, encodeKeys(ks, keysOf(group))
	} else {
		req.Payload = encodePut(ks, group)
	}
	req.Payload = withWriteDeadline(deadline, req.Payload)
	payload, err := p.send(ctx, m, req, time.Time{})
	if err != nil {
		return nil, err
	}
	return decodeResults(payload, len(group))
}

// invalidate tells m to drop its copies of keys, written by owner from at
// store version ver. payload is encodeInvalidate's, shared by every target.
func (p peers) invalidate(ctx context.Context, m cluster.Member, payload []byte, deadline time.Time) error {
	_, err := p.send(ctx, m, transport.Request{Op: opInvalidate, Payload: payload}, deadline)
	return err
}

// handoff gives m, the new owner, entries this node (from) held.
func (p peers) handoff(ctx context.Context, m cluster.Member, ks, from string, entries []handoffEntry) error {
	_, err := p.send(ctx, m, transport.Request{Op: opHandoff, Payload: encodeHandoff(ks, from, entries)}, time.Time{})
	return err
}

// leaving tells m that node name is about to leave on purpose.
func (p peers) leaving(ctx context.Context, m cluster.Member, name string) error {
	_, err := p.send(ctx, m, transport.Request{Op: opLeaving, Payload: encodeName(name)}, time.Time{})
	return err
}

// flush tells m that it missed writes (payload names this node).
func (p peers) flush(ctx context.Context, m cluster.Member, payload []byte) error {
	_, err := p.send(ctx, m, transport.Request{Op: opFlush, Payload: payload}, time.Time{})
	return err
}

// ringInfo asks m for the fingerprint of its ring.
func (p peers) ringInfo(ctx context.Context, m cluster.Member) (uint64, error) {
	payload, err := p.send(ctx, m, transport.Request{Op: opRingInfo}, time.Time{})
	if err != nil {
		return 0, err
	}
	if len(payload) != 8 {
		return 0, errBadPayload
	}
	return binary.BigEndian.Uint64(payload), nil
}

// deleteKeySpace tells m to drop the named keyspace.
func (p peers) deleteKeySpace(ctx context.Context, m cluster.Member, name string) error {
	_, err := p.send(ctx, m, transport.Request{Op: opDeleteKeySpace, Payload: encodeName(name)}, time.Time{})
	return err
}

// replicate sends m copies to apply (opReplicate, see replicas.go); m
// refuses the request after deadline.
func (p peers) replicate(ctx context.Context, m cluster.Member, payload []byte, deadline time.Time) error {
	resp, err := p.send(ctx, m, transport.Request{Op: opReplicate, Payload: withWriteDeadline(deadline, payload)}, deadline)
	if err != nil {
		return err
	}
	return decodeReplicateAnswer(m.Name, resp)
}

// held asks m what it holds of key, owned or as a copy, without loading it.
func (p peers) held(ctx context.Context, m cluster.Member, ks, key string) (heldAnswer, error) {
	payload, err := p.send(ctx, m, transport.Request{Op: opHeld, Payload: encodeKeys(ks, []string{key})}, time.Time{})
	if err != nil {
		return heldAnswer{}, err
	}
	return decodeHeld(payload)
}
