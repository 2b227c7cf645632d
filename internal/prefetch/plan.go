package prefetch

import "slices"

// Ring is the view of a placement that planning needs: who owns a key, and
// whether a member is part of it. The engine adapts its cluster ring.
type Ring interface {
	// Owner returns the name of the member owning key ("" on an empty ring).
	Owner(key string) string
	// Contains reports whether the named member is on the ring.
	Contains(member string) bool
}

// Plan is what one node prefetches after a topology change.
type Plan struct {
	// Local are the keys this node owns in the new ring: it loads them
	// through its own read path.
	Local []string
	// Push maps a member to the hot keys it now owns and that this node is
	// the best placed to tell it about (see [PlanFor]); this node asks that
	// member for each, which makes the member load it.
	Push map[string][]string
}

// Len returns the number of prefetches in the plan.
func (p Plan) Len() int {
	n := len(p.Local)
	for _, keys := range p.Push {
		n += len(keys)
	}
	return n
}

// PlanFor decides what node self prefetches when the placement changes from
// prev to next (prev nil: the node has just started, nothing moved).
//
// Every node plans independently, and the plans combine so that each key
// is loaded once, by its new owner:
//
//   - Local: the warm keys and the hot keys that self owns in next. A key
//     self already held is a cheap store hit.
//   - Push: a hot key whose owner changed, and that self does not own now,
//     is sent to its new owner by the node that knew it best: its previous
//     owner (which saw every request for it), or, when the previous owner
//     left the ring, every node that tracked it (the owner coalesces them
//     into one load). Warm keys are never pushed: every node knows them.
func PlanFor(self string, prev, next Ring, warmKeys, hotKeys []string) Plan {
	var p Plan
	seen := make(map[string]struct{}, len(warmKeys)+len(hotKeys))
	for _, k := range warmKeys {
		if _, dup := seen[k]; dup || k == "" {
			continue
		}
		seen[k] = struct{}{}
		if next.Owner(k) == self {
			p.Local = append(p.Local, k)
		}
	}
	for _, k := range hotKeys {
		if _, dup := seen[k]; dup || k == "" {
			continue
		}
		seen[k] = struct{}{}
		owner := next.Owner(k)
		switch {
		case owner == self:
			p.Local = append(p.Local, k)
		case owner == "" || prev == nil:
		default:
			was := prev.Owner(k)
			if was != owner && was != "" && (was == self || !next.Contains(was)) {
				if p.Push == nil {
					p.Push = map[string][]string{}
				}
				p.Push[owner] = append(p.Push[owner], k)
			}
		}
	}
	for _, keys := range p.Push {
		slices.Sort(keys)
	}
	return p
}
