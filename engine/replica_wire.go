package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Ops of replication (replicas.go); numbered apart from the core ops so
// that ops added elsewhere do not collide.
const (
	// opReplicate: deadline, ks, sender, kind, n, n x (key, value, expiry,
	// tag, del) -> (): apply copies held for the sender, the keys' owner.
	opReplicate uint8 = 20
	// opHeld: ks, key -> found, where, version, expiry, value: what this
	// node holds of key, owned or as a copy, without loading it.
	opHeld uint8 = 21
)

// Kinds of opReplicate.
const (
	replicaWrite uint8 = 1 // a Put or Delete, or the owner's state pushed by repair
	replicaFill  uint8 = 2 // a value the owner loaded from the DataSource
)

// replicaItem is one key of an opReplicate request.
type replicaItem struct {
	Entry
	tag uint64
	del bool
}

// replicateRequest is opReplicate, after its deadline prefix.
type replicateRequest struct {
	keyspace, from string
	kind           uint8
	items          []replicaItem
}

func (r replicateRequest) keySpace() string { return r.keyspace }

func encodeReplicate(ks, from string, kind uint8, items []replicaItem) []byte {
	size := 16 + len(ks) + len(from)
	for _, it := range items {
		size += len(it.Key) + len(it.Value) + 32
	}
	e := encoder{b: make([]byte, 0, size)}
	e.str(ks)
	e.str(from)
	e.byte(kind)
	e.uint(uint64(len(items)))
	for _, it := range items {
		e.entry(it.Entry)
		e.uint(it.tag)
		var del uint8
		if it.del {
			del = 1
		}
		e.byte(del)
	}
	return e.b
}

func decodeReplicate(p []byte) (replicateRequest, error) {
	d := decoder{b: p}
	r := replicateRequest{keyspace: d.str(), from: d.str(), kind: d.byte()}
	n, err := d.keyCount(5)
	if err != nil {
		return r, err
	}
	if d.err == nil {
		r.items = make([]replicaItem, n)
		for i := range r.items {
			d.entry(&r.items[i].Entry)
			r.items[i].tag = d.uint()
			r.items[i].del = d.byte() == 1
		}
	}
	if d.err == nil && r.kind != replicaWrite && r.kind != replicaFill {
		d.fail()
	}
	return r, d.done()
}

// heldAnswer is opHeld's answer. fromStore says the value is an entry this
// node owns (ver is then its store version, comparable with the versions
// of its invalidations, see recentWrites.refuses); otherwise it is a copy
// held for another owner.
type heldAnswer struct {
	found, fromStore bool
	// busy: the holder has a write of the key in progress and could not
	// say; the asker must not take the key as absent.
	busy   bool
	ver    uint64
	expiry time.Time
	value  []byte
}

func encodeHeld(a heldAnswer) []byte {
	switch {
	case a.busy:
		return []byte{3}
	case !a.found:
		return []byte{0}
	}
	e := encoder{b: make([]byte, 0, len(a.value)+24)}
	where := uint8(1)
	if a.fromStore {
		where = 2
	}
	e.byte(where)
	e.uint(a.ver)
	e.uint(expiryNanos(a.expiry))
	e.bytes(a.value)
	return e.b
}

func decodeHeld(p []byte) (heldAnswer, error) {
	d := decoder{b: p}
	var a heldAnswer
	switch d.byte() {
	case 0:
		return a, d.done()
	case 3:
		a.busy = true
		return a, d.done()
	case 1:
	case 2:
		a.fromStore = true
	default:
		d.fail()
	}
	a.found = true
	a.ver = d.uint()
	if exp := d.uint(); exp != 0 {
		if exp > math.MaxInt64 {
			d.fail()
		}
		a.expiry = time.Unix(0, int64(exp))
	}
	a.value = d.bytes()
	if a.value == nil {
		a.value = []byte{}
	}
	return a, d.done()
}

// An opReplicate answer is empty when every item was applied (or refused
// as older than what the receiver holds); otherwise it is the count of
// items the receiver refused because it does not hold their keys in its
// ring (a uvarint): the sender queues them for repair, which pushes them
// again once both rings agree.
func encodeReplicateAnswer(notHeld int) []byte {
	if notHeld == 0 {
		return nil
	}
	return binary.AppendUvarint(nil, uint64(notHeld))
}

// errNotHolder: the receiver of a replica message does not hold some of
// its keys in its ring.
var errNotHolder = errors.New("distcache: replica does not hold the keys in its ring")

func decodeReplicateAnswer(from string, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, k := binary.Uvarint(p)
	if k <= 0 || k != len(p) {
		return fmt.Errorf("%w: replicate answer from %s", errBadPayload, from)
	}
	return fmt.Errorf("%w: %d items refused by %s", errNotHolder, n, from)
}
