// Package users is an ordinary net/http JSON API over PostgreSQL (pgx/v5's
// pgxpool): the handler a team would write for net/http, served unchanged
// by asyncd (main.go) and by http.ListenAndServe (standalone/).
//
//	GET  /users/{id}            one user, 404 if there is none
//	GET  /users?after=ID&limit=N users by id, after ID (default 0), N at most 100 (default 20)
//	POST /users                 {"name":..., "email":...}: 201 with the user, 409 if the email is taken
package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DSNVariable names the environment variable that holds the PostgreSQL
// connection string, e.g.
// postgres://app@/app?host=/run/postgresql&pool_max_conns=24.
const DSNVariable = "DATABASE_URL"

// User is one row of the users table, as the API shows it.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Store is the API's database: a pgxpool opened on first use (Pool), or
// ahead of the first request (Open). Opening is never done when the Store
// is made: asyncd builds handlers in the supervisor and in --check-config
// too, which must neither need the database nor hold connections to it.
type Store struct {
	dsn  func() string
	name string // where the DSN came from, for errors (never the DSN: it may hold a password)
	once sync.Once
	pool *pgxpool.Pool // set by once
	err  error         // set by once
}

// NewStore returns a Store whose connection string is read from
// DATABASE_URL on first use.
func NewStore() *Store {
	return &Store{dsn: func() string { return os.Getenv(DSNVariable) }, name: DSNVariable}
}

// NewStoreDSN returns a Store for the connection string dsn; name says
// where it came from ("options.dsn").
func NewStoreDSN(dsn, name string) *Store {
	return &Store{dsn: func() string { return dsn }, name: name}
}

// CheckDSN reports whether dsn is a connection string pgx accepts, without
// connecting; the error names the DSN's source, not the DSN.
func CheckDSN(dsn, name string) error {
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return fmt.Errorf("%s: not a valid PostgreSQL connection string", name)
	}
	return nil
}

// Pool returns the pool, opening it on the first call. pgxpool connects
// lazily too, so a database that is down shows up as an error of each
// query, not here.
func (s *Store) Pool() (*pgxpool.Pool, error) {
	s.once.Do(func() {
		dsn := s.dsn()
		if dsn == "" {
			s.err = fmt.Errorf("%s is not set", s.name)
			return
		}
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			// pgx's message can quote the DSN, password and all: name the
			// source only.
			s.err = fmt.Errorf("%s: not a valid PostgreSQL connection string", s.name)
			return
		}
		s.pool, s.err = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	return s.pool, s.err
}

// Open opens the pool and checks that the database answers, so that the
// first request finds a connection ready: asyncd calls it before the
// serving process takes traffic (Provision).
func (s *Store) Open(ctx context.Context) error {
	return s.Ping(ctx)
}

// Ping checks that the database answers on one of the pool's connections.
func (s *Store) Ping(ctx context.Context) error {
	pool, err := s.Pool()
	if err != nil {
		return err
	}
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping the database: %w", err)
	}
	return nil
}

// Close closes the pool if it was opened: it waits for the connections in
// use to come back, then ends each with PostgreSQL's Terminate message, so
// the server logs no broken connection. No request may run any more.
func (s *Store) Close() {
	if s.pool != nil {
		s.pool.Close()
	}
}

// NewMux returns the API's handler: an http.ServeMux with Go 1.22
// patterns.
func NewMux(s *Store, log *slog.Logger) http.Handler {
	a := &api{store: s, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", a.get)
	mux.HandleFunc("GET /users", a.list)
	mux.HandleFunc("POST /users", a.create)
	return mux
}

type api struct {
	store  *Store
	log    *slog.Logger
	noPool sync.Once // the "no database" line is logged once, not per request
}

const (
	selectOne  = `SELECT id, name, email, created_at FROM users WHERE id = $1`
	selectPage = `SELECT id, name, email, created_at FROM users WHERE id > $1 ORDER BY id LIMIT $2`
	insertOne  = `INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id, name, email, created_at`

	defaultLimit = 20
	maxLimit     = 100
	maxBody      = 1 << 10 // a user is a name and an email
)

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return
	}
	pool, ok := a.pool(w)
	if !ok {
		return
	}
	var u User
	err = pool.QueryRow(r.Context(), selectOne, id).Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		writeError(w, http.StatusNotFound, "no user "+strconv.FormatInt(id, 10))
	case err != nil:
		a.dbError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, &u)
	}
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	after, limit := int64(0), defaultLimit
	q := r.URL.Query()
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "after must be a non-negative integer")
			return
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d", maxLimit))
			return
		}
		limit = n
	}
	pool, ok := a.pool(w)
	if !ok {
		return
	}
	rows, err := pool.Query(r.Context(), selectPage, after, limit)
	if err != nil {
		a.dbError(w, r, err)
		return
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (User, error) {
		var u User
		err := row.Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt)
		return u, err
	})
	if err != nil {
		a.dbError(w, r, err)
		return
	}
	if list == nil {
		list = []User{} // [] rather than null
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "body must be a JSON object with name and email: "+err.Error())
		return
	}
	in.Name, in.Email = strings.TrimSpace(in.Name), strings.TrimSpace(in.Email)
	if in.Name == "" || !strings.Contains(in.Email, "@") {
		writeError(w, http.StatusBadRequest, "name must not be empty and email must contain @")
		return
	}
	pool, ok := a.pool(w)
	if !ok {
		return
	}
	var u User
	err := pool.QueryRow(r.Context(), insertOne, in.Name, in.Email).Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		writeError(w, http.StatusConflict, "email "+strconv.Quote(in.Email)+" is taken")
	case err != nil:
		a.dbError(w, r, err)
	default:
		w.Header().Set("Location", "/users/"+strconv.FormatInt(u.ID, 10))
		writeJSON(w, http.StatusCreated, &u)
	}
}

// pool returns the store's pool, or answers 503 when it cannot be opened
// (DATABASE_URL unset or invalid).
func (a *api) pool(w http.ResponseWriter) (*pgxpool.Pool, bool) {
	pool, err := a.store.Pool()
	if err != nil {
		a.noPool.Do(func() { a.log.Error("users: no database; every request is answered 503", "err", err) })
		writeError(w, http.StatusServiceUnavailable, "database not configured")
		return nil, false
	}
	return pool, true
}

// dbError answers a failed query: nothing when the client left (its
// context ended the query), 503 otherwise, with the cause in the log only.
func (a *api) dbError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	a.log.Error("users: query failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "database unavailable")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n')) //nolint:errcheck // the client may have left
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
