package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

func TestTenants(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	for _, id := range []string{"acme", "beta"} {
		if got, err := s.AddTenant(ctx, id); err != nil || got.ID != id || got.CreatedAt.IsZero() {
			t.Fatalf("add %s: %+v %v", id, got, err)
		}
	}
	if _, err := s.AddTenant(ctx, "acme"); !errors.Is(err, store.ErrTenantExists) {
		t.Errorf("adding acme twice: %v, want ErrTenantExists", err)
	}
	for _, bad := range []string{"", "Acme", "../etc", "a b", strings.Repeat("a", 64)} {
		if _, err := s.AddTenant(ctx, bad); !errors.Is(err, store.ErrInvalidTenant) {
			t.Errorf("tenant %q: %v, want ErrInvalidTenant", bad, err)
		}
	}
	list, err := s.Tenants(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "acme" || list[1].ID != "beta" {
		t.Errorf("tenants %+v: %v", list, err)
	}
}

func TestTokenLifecycle(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	if _, err := s.AddTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := s.CreateToken(ctx, "acme", "  ci  ", store.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != "ci" || tok.Tenant != "acme" || tok.Scope != store.ScopeRead || tok.LastUsedAt != nil || tok.RevokedAt != nil {
		t.Errorf("created %+v", tok)
	}
	if !strings.HasPrefix(secret, "vgl_") || len(secret) != 47 {
		t.Errorf("secret %q: want vgl_ and 43 base64url characters", secret)
	}
	_, other, err := s.CreateToken(ctx, "acme", "ci", store.ScopeAdmin)
	if err != nil || other == secret {
		t.Fatalf("second token: %v (same secret: %t)", err, other == secret)
	}

	// Only the secret's SHA-256 is stored.
	var stored []byte
	if err := s.Pool().QueryRow(ctx, "SELECT hash FROM api_tokens WHERE id = $1", tok.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 32 || bytes.Contains(stored, []byte(secret)) {
		t.Errorf("stored hash %x", stored)
	}

	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.ID != tok.ID || got.Scope != store.ScopeRead {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	// The first use is recorded, and the next ones within a minute are not written.
	lastUsed := func() time.Time {
		t.Helper()
		var at *time.Time
		if err := s.Pool().QueryRow(ctx, "SELECT last_used_at FROM api_tokens WHERE id = $1", tok.ID).Scan(&at); err != nil || at == nil {
			t.Fatalf("last_used_at %v: %v", at, err)
		}
		return *at
	}
	used := lastUsed()
	if got, err := s.Authenticate(ctx, secret); err != nil || got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("second use: %+v %v, want last use %v", got, err, used)
	}
	if again := lastUsed(); !again.Equal(used) {
		t.Errorf("a use within a minute was written: %v, was %v", again, used)
	}
	if _, err := s.Pool().Exec(ctx, "UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1", tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if again := lastUsed(); again.Before(used) {
		t.Errorf("a use after a minute was not written: %v, first use %v", again, used)
	}

	for _, bad := range []string{"", "vgl_", secret[:46], secret + "x", "xyz_" + secret[4:], strings.ToUpper(secret)} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("authenticate %q: %v, want ErrNotFound", bad, err)
		}
	}

	if _, err := s.RevokeToken(ctx, "beta", tok.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking another tenant's token: %v, want ErrNotFound", err)
	}
	revoked, err := s.RevokeToken(ctx, "acme", tok.ID)
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	if again, err := s.RevokeToken(ctx, "acme", tok.ID); err != nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("revoking twice: %+v %v, want the first revocation kept", again, err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("revoked token: %v, want ErrRevoked", err)
	}
	list, err := s.Tokens(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].RevokedAt == nil || list[1].RevokedAt != nil {
		t.Errorf("tokens %+v: %v", list, err)
	}
	if list, err := s.Tokens(ctx, "beta"); err != nil || len(list) != 0 {
		t.Errorf("tokens of beta %+v: %v", list, err)
	}
}

func TestCreateTokenRefuses(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	if _, err := s.AddTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant, name, scope string
		want                error
		detail              string
	}{
		{"acme", " ", store.ScopeRead, store.ErrInvalidTokenSpec, "name must not be empty"},
		{"acme", "a\nb", store.ScopeRead, store.ErrInvalidTokenSpec, "control characters"},
		{"acme", strings.Repeat("é", 101), store.ScopeRead, store.ErrInvalidTokenSpec, "at most 100"},
		{"acme", "ci", "write", store.ErrInvalidTokenSpec, `scope must be read or admin, got "write"`},
		{"acme", "ci", "", store.ErrInvalidTokenSpec, "scope"},
		{"nobody", "ci", store.ScopeAdmin, store.ErrNoTenant, `"nobody"`},
	} {
		if _, secret, err := s.CreateToken(ctx, c.tenant, c.name, c.scope); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.detail) || secret != "" {
			t.Errorf("CreateToken(%q, %.20q, %q): %v, want %v with %q", c.tenant, c.name, c.scope, err, c.want, c.detail)
		}
	}
}

// TestTenantsSeeded runs migration 0007 over a database that already holds data, as an upgrade
// does: every tenant with videos or cameras becomes a known tenant.
func TestTenantsSeeded(t *testing.T) {
	url := storetest.URL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP TABLE api_tokens, tenants; DELETE FROM schema_migrations WHERE version = 7`); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.QueueUpload(ctx, "acme", "/clips/a.mp4", "a.mp4", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueUpload(ctx, "acme", "/clips/b.mp4", "b.mp4", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddCamera(ctx, "beta", store.CameraSpec{Name: "gate", URL: "rtsp://h/gate"}); err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	list, err := s.Tenants(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "acme" || list[1].ID != "beta" {
		t.Errorf("tenants after the upgrade %+v: %v", list, err)
	}
}
