// Package store owns vigil's PostgreSQL: the private cluster, the connection pool, the embedded
// schema migrations, the batching moment writer, and the videos registry.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key held while migrating, so replicas starting together
// apply each migration once.
const migrationLock = 0x76696769 // "vigi"

// Store is a connection pool to vigil's database.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to url with at most maxConns connections and checks that the server answers.
// The schema must be migrated (Migrate) first: the pool registers pgvector's types.
func Open(ctx context.Context, url string, maxConns int) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	cfg.MaxConns = int32(maxConns)
	cfg.AfterConnect = pgxvec.RegisterTypes
	// A query whose context ends is cancelled on the server too; by default pgx only closes the
	// socket, and PostgreSQL would run an abandoned search to its end.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	// Statements are planned for their values: a cached generic plan cannot tell a selective
	// filter or query from a broad one, and search depends on that.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", redact(url), err)
	}
	return &Store{pool: pool}, nil
}

// Pool exposes the pool to the read side (search) and to metrics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool; it is safe to call twice.
func (s *Store) Close() { s.pool.Close() }

// Migrate applies the embedded migrations that have not run yet to the database at url, under an
// advisory lock.
func Migrate(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("migrate: database %s: %w", redact(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimPrefix(f, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migrate: %s does not start with a version number", name)
		}
		var done bool
		err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&done)
		if err != nil || done {
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			continue
		}
		sql, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %s: %w", name, err)
		}
	}
	return nil
}

// redact hides the password of a connection URL in messages.
func redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		return url
	}
	return strings.Replace(url, ":"+cfg.Password+"@", ":xxxxx@", 1)
}

// Probe connects to url once and reports the server's version and pgvector's (installed in the
// database, or available to it), without needing vigil's schema.
func Probe(ctx context.Context, url string) (server, pgvector string, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", "", fmt.Errorf("connect %s: %w", redact(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&server); err != nil {
		return "", "", err
	}
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'),
		(SELECT default_version FROM pg_available_extensions WHERE name = 'vector'), '')`).Scan(&pgvector)
	if err == nil && pgvector == "" {
		err = errors.New("pgvector is not installed on the server (run deploy/setup.sh)")
	}
	return server, pgvector, err
}
