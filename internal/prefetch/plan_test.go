package prefetch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeRing owns keys by a fixed table.
type fakeRing struct {
	owners  map[string]string
	members []string
}

func (r fakeRing) Owner(k string) string { return r.owners[k] }
func (r fakeRing) Contains(m string) bool {
	for _, x := range r.members {
		if x == m {
			return true
		}
	}
	return false
}

func TestPlanForJoin(t *testing.T) {
	prev := fakeRing{owners: map[string]string{"a": "n1", "b": "n1", "c": "n2", "d": "n2", "w": "n1"}, members: []string{"n1", "n2"}}
	next := fakeRing{owners: map[string]string{"a": "n3", "b": "n1", "c": "n3", "d": "n1", "w": "n3"}, members: []string{"n1", "n2", "n3"}}
	hot := []string{"a", "b", "c", "d"}
	warm := []string{"w"}

	// n1 keeps b, gains d, and hands a (it owned it) to n3; c and d moved
	// away from n2, so n2 tells their new owners, not n1.
	p1 := PlanFor("n1", prev, next, warm, hot)
	require.Equal(t, []string{"b", "d"}, p1.Local)
	require.Equal(t, map[string][]string{"n3": {"a"}}, p1.Push)
	require.Equal(t, 3, p1.Len())

	p2 := PlanFor("n2", prev, next, warm, hot)
	require.Empty(t, p2.Local)
	require.Equal(t, map[string][]string{"n3": {"c"}, "n1": {"d"}}, p2.Push)

	// The new node loads the warm key it owns (and hot keys it tracked).
	p3 := PlanFor("n3", prev, next, warm, []string{"c"})
	require.Equal(t, []string{"w", "c"}, p3.Local)
	require.Empty(t, p3.Push)
}

func TestPlanForLeave(t *testing.T) {
	prev := fakeRing{owners: map[string]string{"a": "gone", "b": "n2"}, members: []string{"n1", "n2", "gone"}}
	next := fakeRing{owners: map[string]string{"a": "n2", "b": "n2"}, members: []string{"n1", "n2"}}
	// The previous owner of a left: every node that saw a tells n2.
	p := PlanFor("n1", prev, next, nil, []string{"a", "b"})
	require.Empty(t, p.Local)
	require.Equal(t, map[string][]string{"n2": {"a"}}, p.Push, "b did not move: nothing to do")
}

func TestPlanForStartAndDuplicates(t *testing.T) {
	next := fakeRing{owners: map[string]string{"a": "n1", "b": "n2"}, members: []string{"n1", "n2"}}
	p := PlanFor("n1", nil, next, []string{"a", "a", "", "b"}, []string{"a", "b"})
	require.Equal(t, []string{"a"}, p.Local, "at start nothing moved: only owned keys, once each")
	require.Empty(t, p.Push)
	require.Zero(t, PlanFor("n1", nil, fakeRing{}, []string{"a"}, []string{"b"}).Len(), "empty ring")
}
