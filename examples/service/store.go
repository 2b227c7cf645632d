package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/distcache/distcache/keyspace"
	_ "modernc.org/sqlite" // pure-Go SQLite driver, registered as "sqlite"
)

// User is one row of the users table, and the JSON the API serves and the
// cache stores. The cache holds the encoded bytes, so what a Get returns is
// exactly what the DataSource (or a write-through Put) stored.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	UpdatedAt time.Time `json:"updated_at"`
}

// store is the service's database: one SQLite file that the three node
// processes share. This is the slow, authoritative backend the cache sits
// in front of; in your service it is Postgres, MySQL or another API.
type store struct {
	db *sql.DB
}

// openStore opens (and creates) the SQLite file at path. Several processes
// open the same file, so it uses WAL mode (readers never block the writer)
// and a busy timeout (a writer waits for another process's write lock
// instead of failing with SQLITE_BUSY).
func openStore(path string) (*store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) Close() error { return s.db.Close() }

// seed creates the users table and fills it with n users (user 1..n). It
// runs once, in the parent process, before any node starts.
func (s *store) seed(ctx context.Context, n int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS users (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL,
		email      TEXT NOT NULL,
		updated_at TEXT NOT NULL)`); err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 1; i <= n; i++ {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)`,
			fmt.Sprint(i), fmt.Sprintf("User %d", i), fmt.Sprintf("user%d@example.com", i), now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Fetch is the keyspace's DataSource: the engine calls it on the key's owner
// node, once per key at a time however many requests miss it together, with
// the keyspace read timeout in ctx. A missing row is keyspace.ErrNotFound,
// which every node then reports as a 404.
func (s *store) Fetch(ctx context.Context, id string) ([]byte, error) {
	u, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(u)
}

func (s *store) get(ctx context.Context, id string) (User, error) {
	var u User
	var updated string
	err := s.db.QueryRowContext(ctx, `SELECT id, name, email, updated_at FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.Name, &u.Email, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, keyspace.ErrNotFound
	}
	if err != nil {
		return User{}, err
	}
	u.UpdatedAt, err = time.Parse(time.RFC3339Nano, updated)
	return u, err
}

// upsert writes a user and returns the row as the database stored it
// (RETURNING), so that a write-through Put caches exactly what a later
// Fetch would load.
func (s *store) upsert(ctx context.Context, u User) (User, error) {
	var out User
	var updated string
	err := s.db.QueryRowContext(ctx, `INSERT INTO users (id, name, email, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email, updated_at = excluded.updated_at
		RETURNING id, name, email, updated_at`,
		u.ID, u.Name, u.Email, time.Now().UTC().Format(time.RFC3339Nano)).
		Scan(&out.ID, &out.Name, &out.Email, &updated)
	if err != nil {
		return User{}, err
	}
	out.UpdatedAt, err = time.Parse(time.RFC3339Nano, updated)
	return out, err
}

// remove deletes a user; a missing user is keyspace.ErrNotFound.
func (s *store) remove(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return keyspace.ErrNotFound
	}
	return nil
}
