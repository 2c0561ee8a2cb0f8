package store

// This file owns tenants and API tokens: making a token's secret, keeping only its hash, and
// finding the token a request's secret belongs to.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigilcam/vigil/configs"
)

// Scopes of an API token.
const (
	// ScopeRead searches and views a tenant's moments, videos and cameras.
	ScopeRead = "read"
	// ScopeAdmin may also upload, change cameras and manage the tenant's tokens.
	ScopeAdmin = "admin"
)

// Errors about tenants and tokens, besides ErrNotFound.
var (
	// ErrInvalidTenant is wrapped when a tenant id is not one configs.ValidTenant accepts.
	ErrInvalidTenant = errors.New("not a tenant id")
	// ErrTenantExists is wrapped when a tenant to add is already known.
	ErrTenantExists = errors.New("already exists")
	// ErrNoTenant is wrapped when a token is made for a tenant that is not known.
	ErrNoTenant = errors.New("no such tenant")
	// ErrInvalidTokenSpec is wrapped by errors about a token's name or scope.
	ErrInvalidTokenSpec = errors.New("invalid token spec")
	// ErrRevoked is returned by Authenticate for a revoked token's secret.
	ErrRevoked = errors.New("token revoked")
)

const (
	// tokenPrefix starts every secret, so that a leaked one is recognisable to people and to
	// secret scanners.
	tokenPrefix = "vgl_"
	// tokenBytes is the randomness of a secret.
	tokenBytes = 32
	// maxTokenName is the longest token name, in characters.
	maxTokenName = 100
)

// tokenLen is the length of every secret: the prefix and the unpadded base64url of its bytes.
var tokenLen = len(tokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// Tenant is a tenant known to vigil.
type Tenant struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is an API token as stored: everything but its secret.
type Token struct {
	ID     int64  `json:"id"`
	Tenant string `json:"tenant"`
	// Name says who or what holds the token.
	Name string `json:"name"`
	// Scope is ScopeRead or ScopeAdmin.
	Scope      string     `json:"scope"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

const tokenColumns = "id, tenant, name, scope, created_at, last_used_at, revoked_at"

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.Tenant, &t.Name, &t.Scope, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// AddTenant records a new tenant; an id already known gives an error wrapping ErrTenantExists.
func (s *Store) AddTenant(ctx context.Context, id string) (Tenant, error) {
	if !configs.ValidTenant(id) {
		return Tenant{}, fmt.Errorf("tenant %q: %w: want lower-case letters, digits, - and _, up to 63", id, ErrInvalidTenant)
	}
	var t Tenant
	err := s.pool.QueryRow(ctx, `INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING
		RETURNING id, created_at`, id).Scan(&t.ID, &t.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Tenant{}, fmt.Errorf("tenant %q: %w", id, ErrTenantExists)
	case err != nil:
		return Tenant{}, fmt.Errorf("tenant %q: %w", id, err)
	}
	return t, nil
}

// Tenants lists the known tenants by id.
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, created_at FROM tenants ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Tenant, error) {
		var t Tenant
		return t, row.Scan(&t.ID, &t.CreatedAt)
	})
}

// CreateToken makes a token for a known tenant and returns it with its secret, which is not kept
// anywhere: only its hash is stored.
func (s *Store) CreateToken(ctx context.Context, tenant, name, scope string) (Token, string, error) {
	name = strings.TrimSpace(name)
	var problems []string
	switch {
	case name == "":
		problems = append(problems, "name must not be empty")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		problems = append(problems, "name must be text without control characters")
	case utf8.RuneCountInString(name) > maxTokenName:
		problems = append(problems, fmt.Sprintf("name must be at most %d characters", maxTokenName))
	}
	if scope != ScopeRead && scope != ScopeAdmin {
		problems = append(problems, fmt.Sprintf("scope must be %s or %s, got %q", ScopeRead, ScopeAdmin, scope))
	}
	if len(problems) > 0 {
		return Token{}, "", fmt.Errorf("%w: %s", ErrInvalidTokenSpec, strings.Join(problems, "; "))
	}
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails: it crashes the program rather than return an error
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	t, err := scanToken(s.pool.QueryRow(ctx, `INSERT INTO api_tokens (tenant, name, scope, hash)
		VALUES ($1, $2, $3, $4) RETURNING `+tokenColumns, tenant, name, scope, hashToken(secret)))
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23503": // foreign_key_violation
		return Token{}, "", fmt.Errorf("tenant %q: %w", tenant, ErrNoTenant)
	case err != nil:
		return Token{}, "", fmt.Errorf("token %q of tenant %q: %w", name, tenant, err)
	}
	return t, secret, nil
}

// Tokens lists the tenant's tokens, revoked ones included, oldest first.
func (s *Store) Tokens(ctx context.Context, tenant string) ([]Token, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE tenant = $1 ORDER BY id", tenant)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Token, error) { return scanToken(row) })
}

// RevokeToken revokes one of the tenant's tokens; revoking it again keeps the first revocation's
// time. Another tenant's token is ErrNotFound, as a missing one is.
func (s *Store) RevokeToken(ctx context.Context, tenant string, id int64) (Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
		WHERE tenant = $1 AND id = $2 RETURNING `+tokenColumns, tenant, id))
	if err != nil {
		return t, fmt.Errorf("token %d: %w", id, err)
	}
	return t, nil
}

// Authenticate returns the token whose secret this is: ErrNotFound when there is none, and the
// token with ErrRevoked when it was revoked. It records the use at most once a minute per token,
// so that busy clients do not turn every request into a write; the token returned shows the use
// recorded before this one.
func (s *Store) Authenticate(ctx context.Context, secret string) (Token, error) {
	// What cannot be a secret is refused without a query.
	if len(secret) != tokenLen || !strings.HasPrefix(secret, tokenPrefix) {
		return Token{}, ErrNotFound
	}
	t, err := scanToken(s.pool.QueryRow(ctx, `
		WITH t AS (SELECT `+tokenColumns+` FROM api_tokens WHERE hash = $1),
		used AS (
			UPDATE api_tokens SET last_used_at = now() FROM t
			WHERE api_tokens.id = t.id AND t.revoked_at IS NULL
				AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))
		SELECT `+tokenColumns+` FROM t`, hashToken(secret)))
	switch {
	case errors.Is(err, ErrNotFound):
		return Token{}, err
	case err != nil:
		return Token{}, fmt.Errorf("authenticate: %w", err)
	case t.RevokedAt != nil:
		return t, ErrRevoked
	}
	return t, nil
}

// hashToken is what is stored of a secret, and what it is looked up by.
func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
