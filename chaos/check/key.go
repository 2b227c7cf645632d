package check

import (
	"fmt"
	"sort"
)

// keyCalls are one key's calls: writes sorted by version, reads in any order.
type keyCalls struct {
	writes []*Call
	reads  []*Call
}

// validate checks what judge relies on: versions are distinct, and each
// write started after the previous one ended (the driver writes a key from
// one client at a time), so the writes' ends are in version order too.
func (kc *keyCalls) validate() string {
	for i := 1; i < len(kc.writes); i++ {
		prev, w := kc.writes[i-1], kc.writes[i]
		if w.Version == prev.Version {
			return fmt.Sprintf("version %d written twice", w.Version)
		}
		if w.Start < prev.End {
			return fmt.Sprintf("v%d started at %s before v%d ended at %s", w.Version, fmtT(w.Start), prev.Version, fmtT(prev.End))
		}
	}
	return ""
}

// judge decides whether read r returned an allowed value (see Check); if
// not, it says why.
func (kc *keyCalls) judge(r *Call) (Anomaly, bool) {
	ws := kc.writes
	// j: the first write not finished when the read began.
	j := sort.Search(len(ws), func(i int) bool { return ws[i].End >= r.Start })
	// W: the last acknowledged write among ws[:j].
	wi := j - 1
	for wi >= 0 && !ws[wi].OK {
		wi--
	}
	var last *Call
	if wi >= 0 {
		last = ws[wi]
	}
	// Allowed: W's value, or that of any later write that started before
	// the read ended (ws[wi+1:j] failed; ws[j:] were in flight or later).
	if last == nil || last.Op == Delete {
		if r.Version == 0 {
			return Anomaly{}, true
		}
	} else if r.Version == last.Version {
		return Anomaly{}, true
	}
	for _, w := range ws[wi+1:] {
		if w.Start >= r.End {
			break
		}
		if (w.Op == Delete && r.Version == 0) || (w.Op == Put && r.Version == w.Version) {
			return Anomaly{}, true
		}
	}

	a := Anomaly{Read: *r, Last: last}
	if r.Version == 0 {
		// Only reachable when W is a Put: its value vanished.
		a.Kind = KindLost
		return a, false
	}
	var src *Call
	for _, w := range ws {
		if w.Op == Put && w.Version == r.Version {
			src = w
			break
		}
	}
	switch {
	case src == nil || src.Start >= r.End || last == nil:
		// Never written, or written only after the read had ended. (With no
		// acknowledged write before the read, every started Put is allowed,
		// so a non-zero version that is not allowed was not yet written.)
		a.Kind = KindImpossible
	case last.Op == Delete:
		a.Kind = KindDeleted
	default:
		a.Kind = KindOlder
	}
	a.FromFailedWrite = src != nil && !src.OK
	return a, false
}
