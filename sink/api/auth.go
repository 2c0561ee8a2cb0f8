package api

// This file owns who a request acts for: the principal found from its bearer token once per
// request, the scope checks handlers make, and the token and tenant endpoints. A caller's tenant
// comes only from its credentials, and another tenant's objects answer exactly as missing ones do.

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/sink/store"
)

// principal is who a request acts for.
type principal struct {
	tenant string
	// scope is store.ScopeRead or store.ScopeAdmin.
	scope string
	// system marks the bootstrap token, which may also add tenants and make tokens for any tenant.
	system bool
	// anonymous marks a request without a token on a server that does not require one.
	anonymous bool
}

// principalKey keys the request's principal in its context.
type principalKey struct{}

// public reports whether a path answers without credentials: the search page, which asks for a
// token when the API wants one, the health check that load balancers poll, and the OpenAPI
// document, which describes the API and holds no tenant's data.
func public(path string) bool {
	return path == "/" || path == "/healthz" || path == "/api/v1/openapi.json"
}

func (s *Server) authRoutes() {
	s.mux.HandleFunc("POST /api/v1/tokens", s.createToken)
	s.mux.HandleFunc("GET /api/v1/tokens", s.tokens)
	s.mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.revokeToken)
	s.mux.HandleFunc("POST /api/v1/tenants", s.addTenant)
}

// authenticate finds who a request acts for from its Authorization header, or answers it (401,
// or 503 when the database does not answer) and returns false. A token that is not valid is
// refused, never taken for no token.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (principal, bool) {
	if r.URL.Query().Has("tenant") {
		// It used to pick the tenant. Ignoring it would answer with the token's tenant's data to a
		// client that believes it asked for another's.
		problem(w, http.StatusBadRequest, "tenant_parameter", "the tenant comes from the token; remove ?tenant=")
		return principal{}, false
	}
	header := r.Header.Values("Authorization")
	if len(header) == 0 {
		switch {
		case s.cfg.AuthRequired:
			unauthorized(w, "", "unauthorized", "this server needs a token: send Authorization: Bearer TOKEN")
		case !configs.Loopback(r.Host):
			// A site whose name was pointed at 127.0.0.1 (DNS rebinding) would otherwise read the
			// API through the browser of this machine's user.
			unauthorized(w, "", "unauthorized", "without a token, address this server as localhost or by a loopback address")
		default:
			return principal{tenant: s.cfg.Tenant, scope: store.ScopeAdmin, anonymous: true}, true
		}
		return principal{}, false
	}
	scheme, secret, _ := strings.Cut(header[0], " ")
	secret = strings.TrimSpace(secret)
	if len(header) > 1 || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		unauthorized(w, "invalid_request", "invalid_credentials", "send one header Authorization: Bearer TOKEN")
		return principal{}, false
	}
	// Comparing hashes takes the same time whatever the secret's length and content.
	if s.bootstrap != nil && subtle.ConstantTimeCompare(hashSecret(secret), s.bootstrap) == 1 {
		return principal{tenant: s.cfg.Tenant, scope: store.ScopeAdmin, system: true}, true
	}
	t, err := s.store.Authenticate(r.Context(), secret)
	switch {
	case errors.Is(err, store.ErrRevoked):
		// Whoever still holds a revoked token may have taken it; the owners want to know.
		s.log.Warn("revoked token used", "tenant", t.Tenant, "token", t.ID, "name", t.Name, "remote", r.RemoteAddr)
		unauthorized(w, "invalid_token", "invalid_credentials", "the token has been revoked")
	case errors.Is(err, store.ErrNotFound):
		unauthorized(w, "invalid_token", "invalid_credentials", "the token is not valid")
	case err != nil:
		s.fail(w, err)
	default:
		return principal{tenant: t.Tenant, scope: t.Scope}, true
	}
	return principal{}, false
}

// unauthorized answers 401 with the challenge of RFC 6750; reason is its error attribute, if any.
func unauthorized(w http.ResponseWriter, reason, code, detail string) {
	challenge := `Bearer realm="vigil"`
	if reason != "" {
		challenge += `, error="` + reason + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	problem(w, http.StatusUnauthorized, code, detail)
}

// hashSecret is what secrets are compared by.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// caller is the request's principal. Only public paths have none, and a handler there that asks
// is refused rather than let through.
func caller(w http.ResponseWriter, r *http.Request) (principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(principal)
	if !ok {
		unauthorized(w, "", "unauthorized", "this needs a token")
	}
	return p, ok
}

// tenant is the tenant a request acts for, which every token may read.
func (s *Server) tenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, ok := caller(w, r)
	return p.tenant, ok
}

// admin is the tenant a request acts for when its token has the admin scope; otherwise it
// answers 403.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, ok := caller(w, r)
	if ok && p.scope != store.ScopeAdmin {
		problem(w, http.StatusForbidden, "forbidden", "this needs a token with the admin scope")
		return "", false
	}
	return p.tenant, ok
}

// allTenants guards what spans every tenant's data: it lets through to next only the bootstrap
// token, and requests without a token on a server that does not require one, which listens on
// loopback.
func (s *Server) allTenants(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := caller(w, r)
		if !ok {
			return
		}
		if !p.system && !p.anonymous {
			problem(w, http.StatusForbidden, "forbidden", "this spans every tenant: it needs the bootstrap token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name string `json:"name"`
	// Scope defaults to read.
	Scope string `json:"scope"`
	// Tenant defaults to the caller's; only the bootstrap token may name another.
	Tenant string `json:"tenant"`
}

// createdToken is a new token with its secret, which is shown this once.
type createdToken struct {
	store.Token
	Secret string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	req := tokenRequest{Scope: store.ScopeRead}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Tenant != "" && req.Tenant != tenant {
		if p, _ := caller(w, r); !p.system {
			problem(w, http.StatusForbidden, "forbidden", "only the bootstrap token may make tokens for another tenant")
			return
		}
		tenant = req.Tenant
	}
	t, secret, err := s.store.CreateToken(r.Context(), tenant, req.Name, req.Scope)
	if err != nil {
		s.authFail(w, err)
		return
	}
	s.log.Info("token created", "tenant", t.Tenant, "token", t.ID, "name", t.Name, "scope", t.Scope)
	w.Header().Set("Cache-Control", "no-store")
	reply(w, http.StatusCreated, createdToken{Token: t, Secret: secret})
}

func (s *Server) tokens(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	list, err := s.store.Tokens(r.Context(), tenant)
	if err != nil {
		s.fail(w, err)
		return
	}
	if list == nil {
		list = []store.Token{}
	}
	reply(w, http.StatusOK, map[string]any{"tokens": list})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		problem(w, http.StatusBadRequest, "invalid_id", "token id must be a positive whole number")
		return
	}
	t, err := s.store.RevokeToken(r.Context(), tenant, id)
	if err != nil {
		s.authFail(w, err)
		return
	}
	s.log.Info("token revoked", "tenant", tenant, "token", t.ID, "name", t.Name)
	w.WriteHeader(http.StatusNoContent)
}

// tenantRequest is the body of POST /api/v1/tenants.
type tenantRequest struct {
	ID string `json:"id"`
}

func (s *Server) addTenant(w http.ResponseWriter, r *http.Request) {
	p, ok := caller(w, r)
	if !ok {
		return
	}
	if !p.system {
		problem(w, http.StatusForbidden, "forbidden", "only the bootstrap token may add tenants")
		return
	}
	var req tenantRequest
	if !decodeBody(w, r, &req) {
		return
	}
	t, err := s.store.AddTenant(r.Context(), req.ID)
	if err != nil {
		s.authFail(w, err)
		return
	}
	s.log.Info("tenant added", "tenant", t.ID)
	reply(w, http.StatusCreated, t)
}

// authFail maps an error about tenants or tokens to a problem response.
func (s *Server) authFail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrInvalidTokenSpec):
		problem(w, http.StatusBadRequest, "invalid_token_spec", err.Error())
	case errors.Is(err, store.ErrNoTenant):
		problem(w, http.StatusBadRequest, "unknown_tenant", err.Error()+"; add it with POST /api/v1/tenants")
	case errors.Is(err, store.ErrInvalidTenant):
		problem(w, http.StatusBadRequest, "invalid_tenant", err.Error())
	case errors.Is(err, store.ErrTenantExists):
		problem(w, http.StatusConflict, "tenant_exists", err.Error())
	case errors.Is(err, store.ErrNotFound):
		problem(w, http.StatusNotFound, "not_found", "no such token")
	default:
		s.fail(w, err)
	}
}
