// Package rowdb is the refresh scenario's shared "database": an HTTP server
// in the driver that every node's DataSource reads, whose rows the driver
// changes while the cluster runs, and which counts every fetch by key and by
// node. Those counts are exact and cluster-wide, which the nodes' own
// counters (summed from samples, lost with a killed process) are not.
//
// A row is a version (0 until the driver sets one); a fetch returns it as
// ctlapi.Value(key, version), the format the workload already parses. A
// deleted row is answered 404, which the node's DataSource turns into
// keyspace.ErrNotFound.
package rowdb

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/distcache/distcache/chaos/internal/ctlapi"
	"github.com/distcache/distcache/keyspace"
)

// pathRow serves one row: GET /row?key=K.
const pathRow = "/row"

// nodeHeader names the fetching node, for the per-node counts.
const nodeHeader = "X-Chaos-Node"

// DB is the database. Its methods are safe for concurrent use.
type DB struct {
	srv *http.Server
	ln  net.Listener

	mu   sync.Mutex // guards rows, deleted, hits
	rows map[string]uint64
	// deleted holds the rows deleted (until Set again).
	deleted map[string]bool
	// hits counts fetches by key, then by node name.
	hits map[string]map[string]int
}

// Start serves a new, empty database on a free port of 127.0.0.1.
func Start() (*DB, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rowdb: %w", err)
	}
	db := &DB{ln: ln, rows: map[string]uint64{}, deleted: map[string]bool{}, hits: map[string]map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc(pathRow, db.serveRow)
	db.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = db.srv.Serve(ln) }() // ends with Close
	return db, nil
}

// URL is the base URL the nodes' DataSources read (chaosnode -db).
func (db *DB) URL() string { return "http://" + db.ln.Addr().String() }

// Close stops serving.
func (db *DB) Close() error { return db.srv.Close() }

// Set changes key's row to version v: fetches from now on return it.
func (db *DB) Set(key string, v uint64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.rows[key] = v
	delete(db.deleted, key)
}

// Delete deletes key's row: fetches from now on find no such row.
func (db *DB) Delete(key string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.deleted[key] = true
}

// Fetches returns a copy of the fetch counts so far, by key, then by the
// fetching node's name.
func (db *DB) Fetches() map[string]map[string]int {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := make(map[string]map[string]int, len(db.hits))
	for k, byNode := range db.hits {
		out[k] = maps.Clone(byNode)
	}
	return out
}

func (db *DB) serveRow(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if key == "" {
		http.Error(w, "missing key", http.StatusBadRequest)
		return
	}
	node := r.Header.Get(nodeHeader)
	db.mu.Lock()
	v, gone := db.rows[key], db.deleted[key]
	if db.hits[key] == nil {
		db.hits[key] = map[string]int{}
	}
	db.hits[key][node]++
	db.mu.Unlock()
	if gone {
		http.Error(w, "no such row", http.StatusNotFound)
		return
	}
	_, _ = w.Write(ctlapi.Value(key, v))
}

// Source is a node's DataSource reading the database at base as node.
type Source struct {
	base, node string
	hc         *http.Client
}

// NewSource returns the DataSource of the node named node, reading the
// database whose URL is base.
func NewSource(base, node string) (*Source, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("rowdb: bad database URL %q", base)
	}
	return &Source{base: base, node: node, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}, nil
}

// CloseIdleConnections frees the source's idle connections.
func (s *Source) CloseIdleConnections() { s.hc.CloseIdleConnections() }

// Fetch reads key's row; ctx (the engine's load deadline) bounds it.
func (s *Source) Fetch(ctx context.Context, key string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+pathRow+"?"+url.Values{"key": {key}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(nodeHeader, s.node)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rowdb: fetch %q: %w", key, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("rowdb: fetch %q: %w", key, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("rowdb: %q: %w", key, keyspace.ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("rowdb: fetch %q: %s: %s", key, resp.Status, body)
	}
	return body, nil
}
