package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/internal/transport"
)

// The admin endpoint {base}/cluster shows every member's counters. The
// node that answers gathers them: its own locally, each other member's by
// an opClusterView request, all at once and each within
// clusterViewTimeout. A member answers with its admin.Member report (its
// keyspaces as its own {base}/keyspaces lists them, and where its admin
// server listens) as JSON. Members that left the ring recently are listed
// too, as unreachable, so that an operator sees a member that just
// crashed or stopped rather than a shorter list.

// clusterViewTimeout bounds each member's answer to a cluster view.
const clusterViewTimeout = time.Second

// maxMemberReportBytes bounds one member's report. Past it the report
// drops its hot and warm keys (user-sized strings); a report still larger
// is refused by both sides.
const maxMemberReportBytes = 4 << 20

// Departed members stay in the view for departedShown, at most
// maxDeparted of them (the most recent).
const (
	departedShown = 5 * time.Minute
	maxDeparted   = 32
)

// Cluster gathers every member's report; see the top of this file.
func (s adminSource) Cluster(ctx context.Context) admin.ClusterView {
	e := s.e
	cl := e.startedCluster()
	if cl == nil {
		return admin.ClusterView{}
	}
	self := cl.Self()
	ring := cl.Ring()
	dist := ring.Distribution()
	members := ring.Members()
	if !ring.Contains(self.Name) {
		members = append(members, self) // leaving: still worth showing
	}
	v := admin.ClusterView{Node: self.Name, Members: make([]admin.Member, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		out := &v.Members[i]
		*out = admin.Member{Name: m.Name, Addr: m.Addr, IsSelf: m.Name == self.Name, Partitions: dist[m.Name]}
		if out.IsSelf {
			fillMember(out, e.memberReport(), nil)
			continue
		}
		wg.Go(func() {
			rep, err := e.askMemberReport(ctx, m)
			fillMember(out, rep, err)
		})
	}
	wg.Wait()
	v.Members = append(v.Members, e.ext.departed.list(ring, time.Now())...)
	return v
}

// fillMember completes a member's entry with its report, or with why
// there is none.
func fillMember(out *admin.Member, rep admin.Member, err error) {
	if err != nil {
		out.Error = err.Error()
		return
	}
	out.Reachable = true
	out.AdminAddr, out.AdminURL, out.KeySpaces = rep.AdminAddr, rep.AdminURL, rep.KeySpaces
}

// memberReport is this node's answer to a cluster view.
func (e *Engine) memberReport() admin.Member {
	m := admin.Member{Name: e.selfName, KeySpaces: adminSource{e}.KeySpaces()}
	m.AdminAddr, m.AdminURL = e.adminLink()
	return m
}

// adminLink returns the admin server's bound address ("" without one) and
// the URL of this node's dashboard: admin.Config.AdvertiseURL when set,
// else derived from the server's address ("" without a server). A server
// on every interface is linked through the host of this node's advertised
// address.
func (e *Engine) adminLink() (addr, url string) {
	srv := e.ext.server.Load()
	if srv != nil {
		addr = srv.Addr()
	}
	if u := e.cfg.extras.admin.AdvertiseURL; u != "" {
		return addr, u
	}
	if srv == nil {
		return "", ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, _, err := net.SplitHostPort(e.cl.Self().Addr); err == nil {
			host = h
		}
	}
	cfg := e.cfg.extras.admin.WithDefaults()
	scheme := "http"
	if cfg.TLSConfig != nil {
		scheme = "https"
	}
	return addr, scheme + "://" + net.JoinHostPort(host, port) + cfg.BasePath + "/"
}

// serveClusterView answers opClusterView with this node's report.
func (e *Engine) serveClusterView() transport.Response {
	b, err := encodeMemberReport(e.memberReport())
	if err != nil {
		return statusResponse(err)
	}
	return transport.Response{Status: statusOK, Payload: b}
}

func encodeMemberReport(m admin.Member) ([]byte, error) {
	b, err := json.Marshal(m)
	if err == nil && len(b) > maxMemberReportBytes {
		for i := range m.KeySpaces {
			m.KeySpaces[i].HotKeys, m.KeySpaces[i].WarmKeys = nil, []string{}
		}
		b, err = json.Marshal(m)
	}
	if err == nil && len(b) > maxMemberReportBytes {
		err = fmt.Errorf("distcache: member report of %d bytes exceeds %d", len(b), maxMemberReportBytes)
	}
	return b, err
}

// askMemberReport asks member m for its report, within clusterViewTimeout.
func (e *Engine) askMemberReport(ctx context.Context, m cluster.Member) (admin.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterViewTimeout)
	defer cancel()
	return e.peers.clusterView(ctx, m)
}

// clusterView asks m for its report (the peer client's method for
// opClusterView, beside its serving side).
func (p peers) clusterView(ctx context.Context, m cluster.Member) (admin.Member, error) {
	payload, err := p.send(ctx, m, transport.Request{Op: opClusterView}, time.Time{})
	if err != nil {
		return admin.Member{}, err
	}
	if n := len(payload); n > maxMemberReportBytes {
		return admin.Member{}, fmt.Errorf("distcache: report of %s: %d bytes exceeds %d", m.Name, n, maxMemberReportBytes)
	}
	var rep admin.Member
	if err := json.Unmarshal(payload, &rep); err != nil {
		return admin.Member{}, fmt.Errorf("distcache: report of %s: %w", m.Name, err)
	}
	return rep, nil
}

// departures remembers the members that recently left this node's ring.
type departures struct {
	mu     sync.Mutex // guards byName
	byName map[string]departure
}

type departure struct {
	addr string
	how  EventType // MemberLeft or MemberFailed
	at   time.Time
}

// note records the departures of one ring change and forgets members that
// came back. It runs on the cluster's rebuild goroutine: it is quick.
func (d *departures) note(changes []memberChange, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range changes {
		switch c.typ {
		case MemberJoined:
			delete(d.byName, c.m.Name)
		case MemberLeft, MemberFailed:
			if d.byName == nil {
				d.byName = map[string]departure{}
			}
			d.byName[c.m.Name] = departure{addr: c.m.Addr, how: c.typ, at: at}
		}
	}
	d.pruneLocked(at)
}

// pruneLocked drops departures older than departedShown, then the oldest
// past maxDeparted.
func (d *departures) pruneLocked(now time.Time) {
	for name, dep := range d.byName {
		if now.Sub(dep.at) > departedShown {
			delete(d.byName, name)
		}
	}
	for len(d.byName) > maxDeparted {
		oldest := ""
		for name, dep := range d.byName {
			if oldest == "" || dep.at.Before(d.byName[oldest].at) {
				oldest = name
			}
		}
		delete(d.byName, oldest)
	}
}

// list returns the recent departures not back in ring, as unreachable
// members, most recent first.
func (d *departures) list(ring *membership.Ring, now time.Time) []admin.Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pruneLocked(now)
	type item struct {
		name string
		dep  departure
	}
	var items []item
	for name, dep := range d.byName {
		if !ring.Contains(name) {
			items = append(items, item{name, dep})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return b.dep.at.Compare(a.dep.at) })
	out := make([]admin.Member, 0, len(items))
	for _, it := range items {
		how := "left the cluster (graceful leave)"
		if it.dep.how == MemberFailed {
			how = "failed (declared dead by failure detection)"
		}
		out = append(out, admin.Member{
			Name: it.name, Addr: it.dep.addr, KeySpaces: []admin.KeySpace{},
			Error: fmt.Sprintf("%s %s ago, at %s", how, now.Sub(it.dep.at).Round(time.Second), it.dep.at.UTC().Format(time.RFC3339)),
		})
	}
	return out
}
