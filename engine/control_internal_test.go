package engine

import (
	"testing"
	"time"

	"github.com/distcache/distcache/internal/transport"
	"github.com/stretchr/testify/require"
)

// A member that left is still a peer for the hand-off window (no leave
// announced) or the graceful-leave horizon (announced), then no longer;
// nobody else ever is. A control message naming another sender than its
// caller is refused even from a member.
func TestControlAcceptsRecentDepartures(t *testing.T) {
	e, _ := startWireNode(t, &heldSource{})
	require.True(t, e.isPeer(e.selfName), "in the ring")
	require.False(t, e.isPeer(""))
	require.False(t, e.isPeer("stranger"))

	e.noteFailed("crashed")
	require.True(t, e.isPeer("crashed"), "dropped out without a leave, just now")
	e.failedMu.Lock()
	e.failed["crashed"] = time.Now().Add(-handoffWindow - time.Second)
	e.failedMu.Unlock()
	require.False(t, e.isPeer("crashed"), "dropped out longer than the hand-off window ago")

	e.noteLeaving("leaver")
	require.True(t, e.isPeer("leaver"), "announced a graceful leave")
	e.leavingMu.Lock()
	e.leaving["leaver"] = time.Now().Add(-time.Minute - time.Second)
	e.leavingMu.Unlock()
	require.False(t, e.isPeer("leaver"), "announced longer ago than leftGracefully remembers")

	for _, req := range []transport.Request{
		{Op: opLeaving, Payload: encodeName("other"), From: e.selfName},
		{Op: opFlush, Payload: encodeFlush("other", time.Now()), From: e.selfName},
		{Op: opHandoff, Payload: encodeHandoff("t", "other", nil), From: e.selfName},
		{Op: opInvalidate, Payload: encodeInvalidate("t", "other", 1, nil), From: e.selfName},
		{Op: opDeleteKeySpace, Payload: encodeName("t"), From: "stranger"},
	} {
		resp, refused := e.refuseControl(req)
		require.True(t, refused, "op %d", req.Op)
		require.ErrorIs(t, errorOf("self", resp.Status, resp.Payload), errNotMember)
	}
	for _, req := range []transport.Request{
		{Op: opHandoff, Payload: encodeHandoff("t", e.selfName, nil), From: e.selfName},
		{Op: opDeleteKeySpace, Payload: encodeName("t"), From: e.selfName},
		{Op: opRingInfo, From: "stranger"},
		{Op: opGet, Payload: encodeKeys("t", []string{"k"}), From: "stranger"},
		{Op: opPut, From: "stranger"},
	} {
		_, refused := e.refuseControl(req)
		require.False(t, refused, "op %d from %q", req.Op, req.From)
	}
}
