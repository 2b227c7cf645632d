package membership

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
)

// ProtocolVersion is the version of the cluster protocol (node meta, RPC
// conventions) this package speaks. Nodes with another version are rejected.
const ProtocolVersion uint8 = 1

// Node meta layout (memberlist caps meta at 512 bytes):
//
//	[0]    metaFormat
//	[1]    ProtocolVersion
//	[2:10] placement config fingerprint, big-endian
const (
	metaFormat = 1
	metaLen    = 10
)

// nodeMeta is the metadata every node advertises.
type nodeMeta struct {
	protocol    uint8
	fingerprint uint64
}

func (m nodeMeta) encode() []byte {
	b := make([]byte, metaLen)
	b[0] = metaFormat
	b[1] = m.protocol
	binary.BigEndian.PutUint64(b[2:], m.fingerprint)
	return b
}

func decodeMeta(b []byte) (nodeMeta, error) {
	if len(b) < metaLen || b[0] != metaFormat {
		return nodeMeta{}, fmt.Errorf("%w: unrecognised node meta (%d bytes)", ErrIncompatibleMember, len(b))
	}
	return nodeMeta{protocol: b[1], fingerprint: binary.BigEndian.Uint64(b[2:])}, nil
}

// compatible reports why a peer advertising meta b cannot join us, or nil.
func (m nodeMeta) compatible(b []byte) error {
	peer, err := decodeMeta(b)
	if err != nil {
		return err
	}
	if peer.protocol != m.protocol {
		return fmt.Errorf("%w: protocol version %d, want %d", ErrIncompatibleMember, peer.protocol, m.protocol)
	}
	if peer.fingerprint != m.fingerprint {
		return fmt.Errorf("%w: placement config fingerprint %016x, want %016x (PartitionCount, VirtualNodes or Load differ)",
			ErrIncompatibleMember, peer.fingerprint, m.fingerprint)
	}
	return nil
}

// delegate implements memberlist's Delegate, EventDelegate, AliveDelegate,
// MergeDelegate and ConflictDelegate. memberlist calls the event, alive and
// conflict methods while holding its node lock: they must not call back into
// memberlist (deadlock, hashicorp/memberlist#237) and must not block, so
// they only log, count and poke the rebuild goroutine.
type delegate struct {
	meta    nodeMeta
	metaBuf []byte
	logger  *slog.Logger
	kick    func()
	stats   *stats
	// alive, if set, is told of each member that joins or comes back (at a
	// new address, or after it failed or left).
	alive func(Member)

	// membersMu guards members, the live members by name, maintained from
	// the event callbacks (see setMember), and sorted, the same members
	// sorted by name (nil until memberList needs it after a change), so that
	// frequent readers copy a slice instead of sorting a map.
	membersMu sync.Mutex
	members   map[string]Member
	sorted    []Member

	// self is this node's name; nameTakenBy is the address of a live member
	// seen claiming it (NotifyConflict), if any.
	self        string
	nameTakenBy atomic.Pointer[string]

	// mu guards rejected and mergeRejects.
	mu sync.Mutex
	// rejected maps names whose rejection was already logged to the reason,
	// so that a peer gossiped about every few hundred ms logs once.
	rejected map[string]string
	// mergeRejects maps the address of a peer whose join merge we vetoed to
	// the reason, so that Join can return a typed error (memberlist flattens
	// the error to text).
	mergeRejects map[string]error
}

// maxRejectedLogged bounds the rejected map.
const maxRejectedLogged = 1024

func newDelegate(meta nodeMeta, logger *slog.Logger, kick func(), st *stats) *delegate {
	return &delegate{meta: meta, metaBuf: meta.encode(), logger: logger, kick: kick, stats: st, rejected: make(map[string]string), mergeRejects: make(map[string]error), members: make(map[string]Member)}
}

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	if limit < len(d.metaBuf) {
		return nil
	}
	return append([]byte(nil), d.metaBuf...)
}

// NotifyMsg implements memberlist.Delegate; user messages are not used.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; there are no broadcasts.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; there is no user state.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate; there is no user state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.setMember(n, true) }

// NotifyLeave implements memberlist.EventDelegate.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.setMember(n, false) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.setMember(n, true) }

// setMember records a membership change and pokes the rebuild goroutine.
// The *Node is memberlist's own and is mutated under its node lock after we
// return, so its fields are read here, while memberlist holds that lock,
// and never later: reading memberlist.Members() results outside the lock is
// a data race (the race detector finds it under gossip).
func (d *delegate) setMember(n *memberlist.Node, alive bool) {
	m := Member{Name: n.Name, Addr: n.Address()}
	d.membersMu.Lock()
	cur, known := d.members[m.Name]
	if alive {
		d.members[m.Name] = m
	} else if known && cur.Addr == m.Addr {
		delete(d.members, m.Name)
	}
	d.sorted = nil
	d.membersMu.Unlock()
	if alive && (!known || cur.Addr != m.Addr) && d.alive != nil {
		d.alive(m)
	}
	d.kick()
}

// memberList returns the live members, sorted by name.
func (d *delegate) memberList() []Member {
	d.membersMu.Lock()
	defer d.membersMu.Unlock()
	if d.sorted == nil {
		d.sorted = make([]Member, 0, len(d.members))
		for _, m := range d.members {
			d.sorted = append(d.sorted, m)
		}
		slices.SortFunc(d.sorted, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	}
	return slices.Clone(d.sorted)
}

// NotifyAlive implements memberlist.AliveDelegate: peers with another
// protocol version or placement config are never admitted, whether they
// arrive by join, gossip or push/pull.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if err := d.meta.compatible(n.Meta); err != nil {
		d.reject(n, err)
		return err
	}
	return nil
}

// NotifyMerge implements memberlist.MergeDelegate: a join (either side)
// fails when the other side knows a live incompatible node, so that Join
// reports the mismatch instead of silently admitting nobody.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if n.State == memberlist.StateDead || n.State == memberlist.StateLeft {
			continue
		}
		if err := d.meta.compatible(n.Meta); err != nil {
			d.reject(n, err)
			err = fmt.Errorf("peer %s (%s): %w", n.Name, n.Address(), err)
			d.mu.Lock()
			if len(d.mergeRejects) >= maxRejectedLogged {
				clear(d.mergeRejects)
			}
			d.mergeRejects[n.Address()] = err
			d.mu.Unlock()
			return err
		}
	}
	return nil
}

// takeMergeReject returns and forgets the reason a join merge with the peer
// at addr ("ip:port") was vetoed, if it was.
func (d *delegate) takeMergeReject(addr string) (error, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	err, ok := d.mergeRejects[addr]
	delete(d.mergeRejects, addr)
	return err, ok
}

// NotifyConflict implements memberlist.ConflictDelegate.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.stats.conflicts.Add(1)
	if existing.Name == d.self {
		addr := other.Address()
		d.nameTakenBy.Store(&addr)
	}
	d.logger.Warn("cluster: node name claimed by a second address; ignored until the first is dead",
		"peer", existing.Name, "addr", existing.Address(), "other_addr", other.Address())
}

// reject counts a rejected peer and logs it once per name and reason.
func (d *delegate) reject(n *memberlist.Node, err error) {
	d.stats.rejected.Add(1)
	reason := err.Error()
	d.mu.Lock()
	logged := d.rejected[n.Name] == reason
	if !logged {
		if len(d.rejected) >= maxRejectedLogged {
			clear(d.rejected)
		}
		d.rejected[n.Name] = reason
	}
	d.mu.Unlock()
	if !logged {
		d.logger.Warn("cluster: rejecting incompatible peer", "peer", n.Name, "addr", n.Address(), "err", err)
	}
}
