package proc

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sleeper(t *testing.T, g *Group) *Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := g.Start(ctx, Spec{
		Argv:  []string{"sh", "-c", "echo up; exec sleep 60"},
		Ready: func(line string) bool { return strings.TrimSpace(line) == "up" },
	})
	require.NoError(t, err)
	return p
}

// TestKillAllKillsStoppedChildren: KillAll leaves no child running, also
// one that was SIGSTOPped, and refuses new ones afterwards.
func TestKillAllKillsStoppedChildren(t *testing.T) {
	g := NewGroup()
	a, b := sleeper(t, g), sleeper(t, g)
	require.NoError(t, b.Signal(syscall.SIGSTOP))
	g.KillAll(10 * time.Second)
	for _, p := range []*Proc{a, b} {
		select {
		case <-p.Done():
		default:
			t.Fatalf("child %d still running after KillAll", p.Pid())
		}
	}
	_, err := g.Start(context.Background(), Spec{Argv: []string{"true"}})
	require.Error(t, err)
}

// TestStartFailsWhenChildExitsUnready: a child that exits before its ready
// line is an error, not a hang.
func TestStartFailsWhenChildExitsUnready(t *testing.T) {
	g := NewGroup()
	defer g.KillAll(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := g.Start(ctx, Spec{Argv: []string{"sh", "-c", "echo nope; exit 3"}, Ready: func(string) bool { return false }})
	require.ErrorContains(t, err, "exited before it was ready")
}
