package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
)

// TestTokensCommand drives `vigil tokens` and `vigil tenants` on the embedded database: a secret is
// printed once, alone on stdout, and never again.
func TestTokensCommand(t *testing.T) {
	c := newCLI(t)
	var secrets []string
	run := func(wantCode int, args ...string) string {
		t.Helper()
		out, code := c.run(nil, args...)
		if code != wantCode {
			t.Errorf("vigil %s: exit %d, want %d", strings.Join(args, " "), code, wantCode)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("vigil %s shows a secret made before: %s", strings.Join(args, " "), out)
			}
		}
		return out
	}
	create := func(args ...string) {
		t.Helper()
		out := strings.TrimSuffix(run(0, append([]string{"tokens", "create"}, args...)...), "\n")
		if !strings.HasPrefix(out, "vgl_") || len(out) != 47 {
			t.Fatalf("tokens create %s printed %q, want the secret alone", strings.Join(args, " "), out)
		}
		secrets = append(secrets, out)
	}

	create("ci")
	create("--scope", "admin", "ops")
	run(2, "tokens", "create", "--scope", "root", "x")
	run(2, "tokens", "create")
	run(2, "tokens", "create", "--tenant", "Bad!", "x")
	run(1, "tokens", "create", "--tenant", "acme", "x")
	run(2, "tokens", "nope")

	if out := run(0, "tenants", "add", "acme"); !strings.Contains(out, "added tenant acme") {
		t.Errorf("tenants add: %s", out)
	}
	run(1, "tenants", "add", "acme")
	run(2, "tenants", "add", "Bad!")
	run(2, "tenants", "add")
	run(2, "tenants", "nope")
	if out := run(0, "tenants", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "default") {
		t.Errorf("tenants list: %s, want acme and the configured tenant", out)
	}
	create("--tenant", "acme", "x")

	out := run(0, "tokens", "list")
	if !strings.Contains(out, "ci") || !strings.Contains(out, "ops") || !strings.Contains(out, "admin") || strings.Contains(out, " x ") {
		t.Errorf("tokens list: %s", out)
	}
	if out := run(0, "tokens", "list", "--tenant", "acme"); strings.Contains(out, "ci") || !strings.Contains(out, "x") {
		t.Errorf("tokens list --tenant acme: %s", out)
	}
	run(1, "tokens", "revoke", "--tenant", "acme", "1")
	run(2, "tokens", "revoke", "first")
	run(1, "tokens", "revoke", "99")
	if out := run(0, "tokens", "revoke", "1"); !strings.Contains(out, `revoked token 1 "ci"`) {
		t.Errorf("tokens revoke: %s", out)
	}
	for _, line := range strings.Split(run(0, "tokens", "list"), "\n") {
		if strings.Contains(line, "ci") && strings.HasSuffix(strings.TrimSpace(line), "never") {
			t.Errorf("revoked token listed as not revoked: %s", line)
		}
	}
}

// TestListenBeyondLoopbackNeedsAuth: every command refuses a configuration that would serve the
// API to other machines without tokens, and says how to turn them on.
func TestListenBeyondLoopbackNeedsAuth(t *testing.T) {
	c := newCLI(t)
	if _, code := c.run([]string{"VIGIL_HTTP_ADDR=0.0.0.0:8420"}, "tenants", "list"); code != 1 {
		t.Errorf("http.addr 0.0.0.0 without auth: exit %d, want 1", code)
	}
	if _, code := c.run([]string{"VIGIL_HTTP_ADDR=0.0.0.0:8420", "VIGIL_AUTH_REQUIRED=true"}, "tenants", "list"); code != 0 {
		t.Errorf("http.addr 0.0.0.0 with auth required: exit %d, want 0", code)
	}
}

// TestServeWithTokens runs serve with tokens required: a request needs a token made by
// `vigil tokens create`, or the bootstrap token from the environment.
func TestServeWithTokens(t *testing.T) {
	onnxtest.Init(t) // serve loads the detector; skips, naming the library, when ONNX Runtime is absent
	sharedtest.YOLO(t)
	const bootstrap = "bootstrap-token-for-the-cli-test-0123456789"
	c := newCLI(t)
	out, code := c.run(nil, "tokens", "create", "viewer")
	if code != 0 {
		t.Fatalf("tokens create: exit %d", code)
	}
	secret := strings.TrimSpace(out)
	c.env = append(c.env, "VIGIL_AUTH_REQUIRED=true", "VIGIL_AUTH_BOOTSTRAP_TOKEN="+bootstrap)
	c.serve()

	status := func(method, path, token string) int {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+c.api+path, strings.NewReader(`{"id": "acme"}`))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, r := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/videos", "", http.StatusUnauthorized},
		{"GET", "/api/v1/videos", secret, http.StatusOK},
		{"GET", "/", "", http.StatusOK},
		{"POST", "/api/v1/tenants", secret, http.StatusForbidden},
		{"POST", "/api/v1/tenants", bootstrap, http.StatusCreated},
		{"GET", "/metrics", bootstrap, http.StatusOK},
	} {
		if got := status(r.method, r.path, r.token); got != r.want {
			t.Errorf("%s %s with token %t: %d, want %d", r.method, r.path, r.token != "", got, r.want)
		}
	}
}
