package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The engine's peer protocol rides internal/transport: a request is an op
// byte plus a payload, a response a status byte plus a payload. Payloads are
// sequences of uvarint-length-prefixed byte strings and uvarints; every
// decoder bounds counts and lengths by the bytes actually present, so a
// hostile frame costs at most its own size and never panics.

// Ops.
const (
	opGet            uint8 = 1  // ks, key -> value
	opGetMany        uint8 = 2  // ks, n, keys -> n x (status, value-or-message)
	opPut            uint8 = 3  // deadline, ks, n, n x (key, value, expiry) -> n x (status, message); the receiver acts as owner
	opDelete         uint8 = 4  // deadline, ks, n, keys -> n x (status, message); the receiver acts as owner
	opDeleteKeySpace uint8 = 5  // ks -> ()
	opLeaving        uint8 = 6  // node name -> (): the sender is leaving gracefully
	opHandoff        uint8 = 7  // ks, sender, n, n x (key, value, expiry, version) -> (): entries moving to their new owner
	opInvalidate     uint8 = 8  // ks, sender, version, n, keys -> (): drop local copies (sent by the owner of a write)
	opFlush          uint8 = 9  // node name, missed at -> (): the sender may have missed invalidating us: flush
	opRingInfo       uint8 = 10 // () -> ring fingerprint (8 bytes, big endian)
	opClusterView    uint8 = 11 // () -> the member's admin report, JSON (cluster_view.go)
	opPush           uint8 = 12 // as opHandoff -> (): a written entry for a node whose near copy the write invalidated (near_push.go)
)

// Statuses.
const (
	statusOK               uint8 = 0
	statusNotFound         uint8 = 1
	statusKeySpaceNotFound uint8 = 2
	statusRateLimited      uint8 = 3
	statusCircuitOpen      uint8 = 4
	statusRejected         uint8 = 5
	statusStopped          uint8 = 6
	statusDeadline         uint8 = 7
	statusCanceled         uint8 = 8
	statusBadRequest       uint8 = 9
	statusError            uint8 = 10 // payload: message
	statusRateLimitWait    uint8 = 11
	statusOmitted          uint8 = 12 // batch answers: not included (size budget), ask again
	statusEmptyKey         uint8 = 13 // payload: message
	statusKeyTooLarge      uint8 = 14 // payload: message
	statusValueTooLarge    uint8 = 15 // payload: message
	statusTooManyKeys      uint8 = 16
	statusQuorum           uint8 = 17 // payload: message
	statusNotMember        uint8 = 18 // payload: message; a control message from a non-member (control.go)
)

// maxKeysPerRequest bounds the keys (or entries) of one peer request. The
// decoders refuse a larger count before allocating for it, so a hostile
// frame cannot turn 16 MiB of one-byte keys into millions of strings and
// fetches; callers split larger batches into several requests.
const maxKeysPerRequest = 1024

// maxWireValueBytes leaves room under the transport's 16 MiB frame limit
// for the key and framing.
const maxWireValueBytes = 15 << 20

var (
	errBadPayload  = errors.New("distcache: malformed peer payload")
	errTooManyKeys = fmt.Errorf("distcache: more than %d keys in one peer request", maxKeysPerRequest)
	errNotMember   = errors.New("distcache: control message refused: the sender is not a member of this cluster")
)

// statusErrors pairs each status with its sentinel, most specific first.
// A status with detail carries the error's message too (the limits say
// which key and how large), recreated as a wireError.
var statusErrors = [...]struct {
	status uint8
	err    error
	detail bool
}{
	{statusRateLimitWait, errRateLimitWait, false},
	{statusNotFound, ErrNotFound, false},
	{statusKeySpaceNotFound, ErrKeySpaceNotFound, false},
	{statusRateLimited, ErrDataSourceRateLimited, false},
	{statusCircuitOpen, ErrDataSourceCircuitOpen, false},
	{statusRejected, ErrRejected, false},
	{statusStopped, ErrEngineStopped, false},
	{statusDeadline, context.DeadlineExceeded, false},
	{statusCanceled, context.Canceled, false},
	{statusBadRequest, errBadPayload, false},
	{statusEmptyKey, ErrEmptyKey, true},
	{statusKeyTooLarge, ErrKeyTooLarge, true},
	{statusValueTooLarge, ErrValueTooLarge, true},
	{statusTooManyKeys, errTooManyKeys, false},
	{statusQuorum, ErrClusterQuorum, true},
	{statusNotMember, errNotMember, true},
}

// statusOf maps an error to the status byte that recreates its sentinel on
// the other side, and a message for the rest.
func statusOf(err error) (uint8, string) {
	if err == nil {
		return statusOK, ""
	}
	for _, se := range statusErrors {
		if errors.Is(err, se.err) {
			if se.detail {
				return se.status, err.Error()
			}
			return se.status, ""
		}
	}
	return statusError, err.Error()
}

// wireError is a sentinel recreated from a status with its peer's message.
type wireError struct {
	msg string
	err error
}

func (w *wireError) Error() string { return w.msg }
func (w *wireError) Unwrap() error { return w.err }

// errorOf is the inverse of statusOf.
func errorOf(peer string, status uint8, msg []byte) error {
	if status == statusOK {
		return nil
	}
	for _, se := range statusErrors {
		if se.status == status {
			if se.detail && len(msg) > 0 {
				return &wireError{msg: string(msg), err: se.err}
			}
			return se.err
		}
	}
	if status == statusError {
		return &RemoteError{Peer: peer, Message: string(msg)}
	}
	return &RemoteError{Peer: peer, Message: fmt.Sprintf("unknown status %d", status)}
}

// encodeName is the payload of the ops that carry one name (opLeaving,
// opFlush, opDeleteKeySpace).
func encodeName(n string) []byte {
	var enc encoder
	enc.str(n)
	return enc.b
}

func decodeName(p []byte) (string, error) {
	d := decoder{b: p}
	name := d.str()
	return name, d.done()
}

// encodeFlush is an opFlush payload: the sender's name, then when it last
// missed invalidating the receiver (unix ns, uvarint).
func encodeFlush(from string, missedAt time.Time) []byte {
	var enc encoder
	enc.str(from)
	enc.b = binary.AppendUvarint(enc.b, uint64(max(missedAt.UnixNano(), 0)))
	return enc.b
}

func decodeFlush(p []byte) (from string, missedAt time.Time, err error) {
	d := decoder{b: p}
	from = d.str()
	at := d.uint()
	if err := d.done(); err != nil {
		return "", time.Time{}, err
	}
	if at > math.MaxInt64 {
		return "", time.Time{}, errors.New("flush notice time out of range")
	}
	return from, time.Unix(0, int64(at)), nil
}

// encoder appends to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) bytes(p []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) byte(v uint8)  { e.b = append(e.b, v) }

// decoder reads what encoder wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errBadPayload
	}
	d.b = nil
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() uint8 {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// bytes returns a sub-slice of the payload (no copy).
func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.bytes()) }

// count reads a collection length, bounded by the remaining bytes (every
// element takes at least minElem bytes).
func (d *decoder) count(minElem int) int {
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)/minElem) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

// keysRequest is opGet, opGetMany and opDelete.
type keysRequest struct {
	keyspace string
	keys     []string
}

func encodeKeys(ks string, keys []string) []byte {
	e := encoder{b: make([]byte, 0, 8+len(ks)+len(keys)*24)}
	e.str(ks)
	e.keys(keys)
	return e.b
}

func decodeKeys(p []byte) (keysRequest, error) {
	d := decoder{b: p}
	r := keysRequest{keyspace: d.str()}
	var err error
	if r.keys, err = d.keys(); err != nil {
		return r, err
	}
	return r, d.done()
}

// keys writes a count-prefixed list of keys.
func (e *encoder) keys(keys []string) {
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
	}
}

// keys reads what encoder.keys wrote; more than maxKeysPerRequest is
// errTooManyKeys, found before anything is allocated for them.
func (d *decoder) keys() ([]string, error) {
	n, err := d.keyCount(1)
	if err != nil || d.err != nil {
		return nil, err
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = d.str()
	}
	return keys, nil
}

// keyCount reads a count of keys or entries (see count), at most
// maxKeysPerRequest.
func (d *decoder) keyCount(minElem int) (int, error) {
	n := d.count(minElem)
	if d.err == nil && n > maxKeysPerRequest {
		return 0, errTooManyKeys
	}
	return n, nil
}

// entry writes an entry's key, value and expiry (opPut, opHandoff).
func (e *encoder) entry(en Entry) {
	e.str(en.Key)
	e.bytes(en.Value)
	e.uint(expiryNanos(en.Expiry))
}

// entry reads what encoder.entry wrote into en.
func (d *decoder) entry(en *Entry) {
	en.Key = d.str()
	en.Value = d.bytes()
	if exp := d.uint(); exp != 0 {
		if exp > math.MaxInt64 {
			d.fail()
		}
		en.Expiry = time.Unix(0, int64(exp))
	}
}

// putRequest is opPut.
type putRequest struct {
	keyspace string
	entries  []Entry
}

func encodePut(ks string, entries []Entry) []byte {
	size := 8 + len(ks)
	for _, en := range entries {
		size += len(en.Key) + len(en.Value) + 20
	}
	e := encoder{b: make([]byte, 0, size)}
	e.str(ks)
	e.uint(uint64(len(entries)))
	for _, en := range entries {
		e.entry(en)
	}
	return e.b
}

func decodePut(p []byte) (putRequest, error) {
	d := decoder{b: p}
	r := putRequest{keyspace: d.str()}
	n, err := d.keyCount(3)
	if err != nil {
		return r, err
	}
	if d.err == nil {
		r.entries = make([]Entry, n)
		for i := range r.entries {
			d.entry(&r.entries[i])
		}
	}
	return r, d.done()
}

// maxExpiry is the latest expiry the wire carries (UnixNano's limit, in
// the year 2262); later ones are sent as it.
var maxExpiry = time.Unix(0, math.MaxInt64)

// expiryNanos encodes an expiry as unix nanoseconds for the wire: 0 is "no
// expiry"; any time up to the epoch is 1 (long past: the entry is expired,
// and a Put of it deletes); any time after maxExpiry saturates to it, so a
// "far future" such as the year 3000 stays far future instead of
// overflowing (time.Time.UnixNano is undefined outside 1678..2262).
func expiryNanos(t time.Time) uint64 {
	switch {
	case t.IsZero():
		return 0
	case !t.After(time.Unix(0, 1)):
		return 1
	case t.After(maxExpiry):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// withWriteDeadline prefixes a write request (opPut, opDelete) with the
// writer's deadline, unix ns: the owner applies the write before it or
// never. (Node clocks are assumed to agree to well within write timeouts,
// as they are for expiries.)
func withWriteDeadline(deadline time.Time, p []byte) []byte {
	out := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(p)), expiryNanos(deadline))
	return append(out, p...)
}

// decodeWriteDeadline splits withWriteDeadline's encoding; a missing
// deadline (0) is refused: every write has one.
func decodeWriteDeadline(p []byte) (time.Time, []byte, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n == 0 || n > math.MaxInt64 {
		return time.Time{}, nil, errBadPayload
	}
	return time.Unix(0, int64(n)), p[k:], nil
}

// handoffEntry is an entry handed off with its store version on the
// sender (see recentWrites.refuses).
type handoffEntry struct {
	Entry
	ver uint64
}

// handoffRequest is opHandoff.
type handoffRequest struct {
	keyspace, from string
	entries        []handoffEntry
}

func encodeHandoff(ks, from string, entries []handoffEntry) []byte {
	size := 16 + len(ks) + len(from)
	for _, en := range entries {
		size += len(en.Key) + len(en.Value) + 30
	}
	e := encoder{b: make([]byte, 0, size)}
	e.str(ks)
	e.str(from)
	e.uint(uint64(len(entries)))
	for _, en := range entries {
		e.entry(en.Entry)
		e.uint(en.ver)
	}
	return e.b
}

func decodeHandoff(p []byte) (handoffRequest, error) {
	d := decoder{b: p}
	r := handoffRequest{keyspace: d.str(), from: d.str()}
	n, err := d.keyCount(4)
	if err != nil {
		return r, err
	}
	if d.err == nil {
		r.entries = make([]handoffEntry, n)
		for i := range r.entries {
			d.entry(&r.entries[i].Entry)
			r.entries[i].ver = d.uint()
		}
	}
	return r, d.done()
}

// invalidateRequest is opInvalidate: the owner from, whose store was at
// version ver, is writing keys.
type invalidateRequest struct {
	keyspace, from string
	ver            uint64
	keys           []string
}

func encodeInvalidate(ks, from string, ver uint64, keys []string) []byte {
	e := encoder{b: make([]byte, 0, 24+len(ks)+len(from)+len(keys)*24)}
	e.str(ks)
	e.str(from)
	e.uint(ver)
	e.keys(keys)
	return e.b
}

func decodeInvalidate(p []byte) (invalidateRequest, error) {
	d := decoder{b: p}
	r := invalidateRequest{keyspace: d.str(), from: d.str(), ver: d.uint()}
	var err error
	if r.keys, err = d.keys(); err != nil {
		return r, err
	}
	return r, d.done()
}

// result is one key's outcome in a batch response.
type result struct {
	status uint8
	data   []byte // value for statusOK, message for statusError
}

func encodeResults(rs []result) []byte {
	size := 4
	for _, r := range rs {
		size += len(r.data) + 6
	}
	e := encoder{b: make([]byte, 0, size)}
	e.uint(uint64(len(rs)))
	for _, r := range rs {
		e.byte(r.status)
		e.bytes(r.data)
	}
	return e.b
}

func decodeResults(p []byte, want int) ([]result, error) {
	d := decoder{b: p}
	n := d.count(2)
	if d.err == nil && n != want {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	rs := make([]result, n)
	for i := range rs {
		rs[i].status = d.byte()
		rs[i].data = d.bytes()
	}
	return rs, d.done()
}
