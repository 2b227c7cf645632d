package admin

import "slices"

// ClusterView is the body of GET {base}/cluster: every member's counters,
// gathered by the member that answers (Node).
type ClusterView struct {
	// Node is the member that gathered the view.
	Node string `json:"node"`
	// Members are the members of Node's ring, in ring order, then members
	// that left it recently (Reachable false, Error saying when and how).
	Members []Member `json:"members"`
	// Gets counts the Gets callers made on the reachable members (each
	// once, on the member that received the call: gets − server_requests),
	// and Fetches their DataSource calls, over every keyspace.
	Gets    int64 `json:"gets"`
	Fetches int64 `json:"fetches"`
	// DataSourceAvoided is the cluster's hit ratio, 1 − Fetches ÷ Gets
	// (see DataSourceAvoided); null before the first Get.
	DataSourceAvoided *float64 `json:"datasource_avoided"`
}

// Member is one cluster member in a ClusterView.
type Member struct {
	// Name and Addr are the member's node name and data address.
	Name string `json:"name"`
	Addr string `json:"addr"`
	// AdminAddr is the bound address of the member's admin server and
	// AdminURL its dashboard ("" when it runs none).
	AdminAddr string `json:"admin_addr"`
	AdminURL  string `json:"admin_url"`
	// IsSelf is true for the member that gathered the view.
	IsSelf bool `json:"is_self"`
	// Reachable is false when the member did not answer in time; Error
	// says why.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error"`
	// Partitions is how many ring partitions the member owns in the
	// gathering node's ring.
	Partitions int `json:"partitions"`
	// KeySpaces are the member's own keyspaces, as its GET
	// {base}/keyspaces reports them (never null).
	KeySpaces []KeySpace `json:"keyspaces"`
}

// DataSourceAvoided is the one hit ratio distcache reports: the share of
// gets that did not reach the DataSource, 1 − fetches ÷ gets (ok is false
// without gets). For one node, gets are the lookups it handled (its
// callers' Gets and those it served for peers: KeySpaceStats.Gets); for
// the cluster, the Gets callers made (ClusterView.Gets). Fetches made
// without a Get (warmup prefetches) can exceed gets: the ratio is then 0.
func DataSourceAvoided(gets, fetches int64) (ratio float64, ok bool) {
	if gets <= 0 {
		return 0, false
	}
	return max(0, 1-float64(fetches)/float64(gets)), true
}

func ratioPtr(gets, fetches int64) *float64 {
	if r, ok := DataSourceAvoided(gets, fetches); ok {
		return &r
	}
	return nil
}

// withRatios returns a copy of kss with each keyspace's ratio filled (the
// Source's values stay as it returned them).
func withRatios(kss []KeySpace) []KeySpace {
	kss = slices.Clone(kss)
	for i := range kss {
		if s := kss[i].Stats; s != nil {
			c := *s
			c.DataSourceAvoided = ratioPtr(c.Gets, c.Fetches)
			kss[i].Stats = &c
		}
	}
	return kss
}

// withTotals fills the derived fields of v: the ratios of every keyspace
// and the cluster totals over the reachable members.
func (v ClusterView) withTotals() ClusterView {
	v.Members = slices.Clone(nonNil(v.Members))
	v.Gets, v.Fetches = 0, 0
	for i := range v.Members {
		m := &v.Members[i]
		m.KeySpaces = withRatios(nonNil(m.KeySpaces))
		if !m.Reachable {
			continue
		}
		for _, ks := range m.KeySpaces {
			if s := ks.Stats; s != nil {
				v.Gets += max(s.Gets-s.ServerRequests, 0)
				v.Fetches += s.Fetches
			}
		}
	}
	v.DataSourceAvoided = ratioPtr(v.Gets, v.Fetches)
	return v
}
