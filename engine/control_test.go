package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/transport"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPeer is a bare transport that authenticates with secret under name
// and sends engine messages, as a process holding the secret could.
func rawPeer(t *testing.T, label, name string, secret []byte) func(to *engine.Engine, req transport.Request) transport.Response {
	t.Helper()
	cfg := transport.DefaultConfig()
	cfg.Label, cfg.NodeName, cfg.AuthSecret = label, name, secret
	tr, err := transport.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.Shutdown()) })
	return func(to *engine.Engine, req transport.Request) transport.Response {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := tr.Call(ctx, to.Addr(), req)
		require.NoError(t, err)
		return resp
	}
}

// Control messages (leaving, hand-off, invalidate, flush, delete-keyspace)
// are refused from a caller that authenticated with the cluster's secret
// under a name that is not a member, or that names another node as their
// sender, and change nothing: the key keeps its value, the keyspace its
// entries, no node opens a hand-off window or records a departure. The
// same messages under a member's name take effect.
func TestControlMessagesOnlyFromMembers(t *testing.T) {
	const label = "control-members"
	secret := []byte("0123456789abcdef0123456789abcdef")
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Label: label, Options: []engine.Option{engine.WithGossipSecret(secret)}})
	ctx := context.Background()
	ks := testutil.DefaultKeySpace
	owner := c.Node(0)
	keys := c.KeysOwnedBy(0, 3, "ctl")
	kept, absent, handed := keys[0], keys[1], keys[2]
	require.NoError(t, owner.Put(ctx, ks, engine.Entry{Key: kept, Value: []byte("kept")}))
	entries := func() int64 {
		s, ok := owner.Stats().KeySpace(ks)
		require.True(t, ok)
		return s.Entries
	}
	entriesBefore := entries()
	require.Positive(t, entriesBefore)
	windows := make([]int64, 3)
	for i := range windows {
		windows[i] = c.Node(i).RingChangedAt()
	}

	member := c.Name(1)
	intruder := rawPeer(t, label, "intruder", secret)
	for name, req := range map[string]transport.Request{
		"leaving":                engine.LeavingRequest("intruder"),
		"hand-off":               engine.HandoffRequest(ks, "intruder", absent, []byte("evil")),
		"invalidate":             engine.InvalidateRequest(ks, "intruder", kept),
		"flush":                  engine.FlushRequest("intruder"),
		"delete-keyspace":        engine.DeleteKeySpaceRequest(ks),
		"leaving for a member":   engine.LeavingRequest(member),
		"hand-off for a member":  engine.HandoffRequest(ks, member, absent, []byte("evil")),
		"invalidate as a member": engine.InvalidateRequest(ks, member, kept),
		"flush for a member":     engine.FlushRequest(member),
	} {
		for i := range 3 {
			resp := intruder(c.Node(i), req)
			assert.Equal(t, engine.StatusNotMember, resp.Status, "%s to node %d: %s", name, i, resp.Payload)
			assert.Contains(t, string(resp.Payload), `"intruder"`, "%s: the refusal names the caller", name)
		}
	}

	for i := range 3 {
		assert.Equal(t, windows[i], c.Node(i).RingChangedAt(), "node %d opened no hand-off window", i)
		assert.False(t, c.Node(i).LeftGracefully("intruder"))
		assert.False(t, c.Node(i).LeftGracefully(member))
	}
	v, err := owner.Get(ctx, ks, kept)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(v), "the key keeps its value")
	assert.Zero(t, c.DataSource.Fetches(kept), "served from the store: neither invalidated nor flushed")
	assert.Equal(t, entriesBefore, entries(), "the keyspace keeps its entries")
	v, err = owner.Get(ctx, ks, absent)
	require.NoError(t, err)
	assert.Equal(t, testutil.ValueOf(absent), v, "the handed-off value was not taken")
	s, _ := owner.Stats().KeySpace(ks)
	assert.Zero(t, s.HandoffsTaken)

	// The same messages from a member take effect.
	asMember := rawPeer(t, label, member, secret)
	resp := asMember(owner, engine.InvalidateRequest(ks, member, kept))
	require.Equal(t, uint8(0), resp.Status, "%s", resp.Payload)
	v, err = owner.Get(ctx, ks, kept)
	require.NoError(t, err)
	assert.Equal(t, testutil.ValueOf(kept), v, "invalidated: reloaded from the DataSource")
	resp = asMember(owner, engine.LeavingRequest(member))
	require.Equal(t, uint8(0), resp.Status, "%s", resp.Payload)
	assert.True(t, owner.LeftGracefully(member))
	assert.Greater(t, owner.RingChangedAt(), windows[0], "a member's leaving opens the hand-off window")
	resp = asMember(owner, engine.HandoffRequest(ks, member, handed, []byte("handed")))
	require.Equal(t, uint8(0), resp.Status, "%s", resp.Payload)
	v, err = owner.Get(ctx, ks, handed)
	require.NoError(t, err)
	assert.Equal(t, "handed", string(v), "a member's hand-off is taken")
}
