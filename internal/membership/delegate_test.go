package membership

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordHandler is a slog.Handler that keeps records.
type recordHandler struct {
	mu      sync.Mutex
	level   slog.Level
	records []slog.Record
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) snapshot() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.records...)
}

func TestNodeMeta(t *testing.T) {
	ours := nodeMeta{protocol: ProtocolVersion, fingerprint: RingConfig{}.fingerprint()}
	b := ours.encode()
	require.Len(t, b, metaLen)
	got, err := decodeMeta(b)
	require.NoError(t, err)
	assert.Equal(t, ours, got)
	assert.NoError(t, ours.compatible(b))

	for _, tc := range []struct {
		name string
		meta []byte
	}{
		{"nil", nil},
		{"short", b[:5]},
		{"unknown format", append([]byte{9}, b[1:]...)},
		{"other protocol", nodeMeta{protocol: ProtocolVersion + 1, fingerprint: ours.fingerprint}.encode()},
		{"other fingerprint", nodeMeta{protocol: ProtocolVersion, fingerprint: RingConfig{Load: 2}.fingerprint()}.encode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, ours.compatible(tc.meta), ErrIncompatibleMember)
		})
	}
}

func TestDelegateRejectsIncompatiblePeers(t *testing.T) {
	h := &recordHandler{level: slog.LevelWarn}
	var st stats
	kicks := 0
	ours := nodeMeta{protocol: ProtocolVersion, fingerprint: 42}
	d := newDelegate(ours, slog.New(h), func() { kicks++ }, &st)

	assert.Equal(t, ours.encode(), d.NodeMeta(memberlist.MetaMaxSize))
	assert.Nil(t, d.NodeMeta(3), "meta never exceeds the limit")

	good := &memberlist.Node{Name: "good", Meta: ours.encode()}
	bad := &memberlist.Node{Name: "bad", Meta: nodeMeta{protocol: ProtocolVersion, fingerprint: 43}.encode()}
	assert.NoError(t, d.NotifyAlive(good))
	for range 5 {
		assert.ErrorIs(t, d.NotifyAlive(bad), ErrIncompatibleMember)
	}
	assert.Equal(t, uint64(5), st.rejected.Load())
	assert.Len(t, h.snapshot(), 1, "a rejected peer is logged once")

	assert.NoError(t, d.NotifyMerge([]*memberlist.Node{good}))
	deadBad := *bad
	deadBad.State = memberlist.StateDead
	assert.NoError(t, d.NotifyMerge([]*memberlist.Node{good, &deadBad}), "dead nodes do not veto a merge")
	err := d.NotifyMerge([]*memberlist.Node{good, bad})
	assert.ErrorIs(t, err, ErrIncompatibleMember)
	rej, ok := d.takeMergeReject(bad.Address())
	require.True(t, ok)
	assert.ErrorIs(t, rej, ErrIncompatibleMember)
	_, ok = d.takeMergeReject(bad.Address())
	assert.False(t, ok, "taken once")

	d.NotifyJoin(good)
	d.NotifyUpdate(good)
	d.NotifyLeave(good)
	assert.Equal(t, 3, kicks)

	d.NotifyConflict(good, bad)
	assert.Equal(t, uint64(1), st.conflicts.Load())
}

func TestMemberlistLogBridge(t *testing.T) {
	h := &recordHandler{level: slog.LevelDebug}
	l := memberlistLogger(slog.New(h))
	l.Printf("[DEBUG] memberlist: Using dynamic bind port %d", 1234)
	l.Printf("[INFO] memberlist: Marking %s as failed", "x")
	l.Printf("[WARN] memberlist: Binding to public address without encryption!")
	l.Printf("[ERR] memberlist: Failed to receive")
	l.Printf("[ERROR] memberlist: also an error")
	l.Printf("no level at all")

	recs := h.snapshot()
	require.Len(t, recs, 6)
	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelDebug, "Using dynamic bind port 1234"},
		{slog.LevelInfo, "Marking x as failed"},
		{slog.LevelWarn, "Binding to public address without encryption!"},
		{slog.LevelError, "Failed to receive"},
		{slog.LevelError, "also an error"},
		{slog.LevelInfo, "no level at all"},
	}
	for i, w := range want {
		assert.Equal(t, w.level, recs[i].Level, i)
		assert.Equal(t, w.msg, recs[i].Message, i)
	}

	quiet := &recordHandler{level: slog.LevelWarn}
	ql := memberlistLogger(slog.New(quiet))
	ql.Printf("[DEBUG] memberlist: dropped")
	ql.Printf("[WARN] memberlist: kept")
	require.Len(t, quiet.snapshot(), 1)
	assert.Equal(t, "kept", quiet.snapshot()[0].Message)
}

// memberList follows every join, update and leave, sorted by name, and
// hands out copies that callers may change.
func TestDelegateMemberList(t *testing.T) {
	var st stats
	d := newDelegate(nodeMeta{protocol: ProtocolVersion}, slog.New(slog.DiscardHandler), func() {}, &st)
	node := func(name, ip string) *memberlist.Node {
		return &memberlist.Node{Name: name, Addr: net.ParseIP(ip), Port: 7946}
	}
	require.Empty(t, d.memberList())
	d.NotifyJoin(node("b", "10.0.0.2"))
	d.NotifyJoin(node("a", "10.0.0.1"))
	require.Equal(t, []Member{{Name: "a", Addr: "10.0.0.1:7946"}, {Name: "b", Addr: "10.0.0.2:7946"}}, d.memberList())

	got := d.memberList()
	got[0].Name = "mutated"
	require.Equal(t, "a", d.memberList()[0].Name, "a copy")

	d.NotifyUpdate(node("a", "10.0.0.9"))
	d.NotifyJoin(node("c", "10.0.0.3"))
	require.Equal(t, []Member{{Name: "a", Addr: "10.0.0.9:7946"}, {Name: "b", Addr: "10.0.0.2:7946"}, {Name: "c", Addr: "10.0.0.3:7946"}}, d.memberList())
	d.NotifyLeave(node("b", "10.0.0.2"))
	require.Equal(t, []Member{{Name: "a", Addr: "10.0.0.9:7946"}, {Name: "c", Addr: "10.0.0.3:7946"}}, d.memberList())
}
