package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

// usersKeySpace is the cache namespace of the API's users, registered by
// every node with the same DataSource (a query of the shared database).
const usersKeySpace = "users"

// api is the service's JSON API over /users/{id}: reads through the cache,
// writes to the database first and then to the cache.
type api struct {
	e   *engine.Engine
	db  *store
	log *slog.Logger
}

func (a *api) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /users/{id}", a.getUser)
	mux.HandleFunc("PUT /users/{id}", a.putUser)
	mux.HandleFunc("DELETE /users/{id}", a.deleteUser)
}

// getUser is a read-through Get: on whichever node the request lands, the
// engine asks the key's owner, which answers from its memory or loads the
// row from SQLite once (however many nodes and requests miss it together).
// The cached bytes are already the JSON answer.
func (a *api) getUser(w http.ResponseWriter, r *http.Request) {
	v, err := a.e.Get(r.Context(), usersKeySpace, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(v)
}

// putUser creates or replaces a user, writing through: the database first
// (the source of truth), then the new row into the cache with Put, so the
// next Get on any node is a hit with the new value and the database is not
// asked again.
//
// Pick write-through when the writer holds the complete value that a Fetch
// would return (here: the row RETURNING gives back) and the key is read
// soon after it is written. Its limit: two concurrent writers of one key
// may reach the database in one order and the cache in the other, leaving
// the older value cached until its TTL. If that matters, or if the cached
// value is derived from more than this write (joins, counters, triggers),
// invalidate instead, as deleteUser does.
func (a *api) putUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&u); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	u.ID = r.PathValue("id")
	if u.Name == "" || u.Email == "" {
		http.Error(w, "name and email are required", http.StatusBadRequest)
		return
	}
	saved, err := a.db.upsert(r.Context(), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := json.Marshal(saved)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Write-through. If this Put fails the database already has the new row:
	// drop the cached copy instead, so no node serves the old one.
	if err := a.e.Put(r.Context(), usersKeySpace, engine.Entry{Key: u.ID, Value: body}); err != nil {
		a.log.Warn("write-through failed, invalidating", "id", u.ID, "err", err)
		if err := a.e.Delete(r.Context(), usersKeySpace, u.ID); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// deleteUser removes a user, invalidating: the database first, then Delete
// drops the key from every node before it returns, so no node serves the
// deleted user afterwards; the next Get loads from the database (and gets
// a 404 there).
//
// Invalidation is the safe default for any write: it never caches a value
// the database does not hold, whatever the order of concurrent writers. It
// costs one DataSource fetch on the next read of the key.
func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.db.remove(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.e.Delete(r.Context(), usersKeySpace, id); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail maps engine and database errors to HTTP statuses.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, keyspace.ErrNotFound):
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, engine.ErrEmptyKey), errors.Is(err, engine.ErrKeyTooLarge):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, engine.ErrEngineStopped), errors.Is(err, engine.ErrDataSourceCircuitOpen),
		errors.Is(err, engine.ErrDataSourceRateLimited):
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// newHTTPServer bounds every connection so that a slow client cannot hold
// a node's goroutines; the handlers' own deadlines come from the engine's
// read and write timeouts.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       time.Minute,
	}
}
