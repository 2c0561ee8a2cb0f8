package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/api"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

// bootstrap is the bootstrap token of the servers below.
const bootstrap = "bootstrap-token-for-the-tests-0123456789"

// logBuffer collects a server's log, for tests that look for secrets in it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// authServer is the API of tenant "default" on a fresh database, with the bootstrap token.
func authServer(t testing.TB, required bool) (*httptest.Server, *store.Store, *logBuffer) {
	t.Helper()
	st := storetest.Open(t)
	if _, err := st.AddTenant(context.Background(), "default"); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	srv := httptest.NewServer(api.New(api.Config{Tenant: "default", AuthRequired: required, BootstrapToken: bootstrap},
		st, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, nil))))
	t.Cleanup(srv.Close)
	return srv, st, logs
}

// token makes a token for tenant, adding the tenant if it is new, and returns its secret.
func token(t testing.TB, st *store.Store, tenant, scope string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := st.AddTenant(ctx, tenant); err != nil && !errors.Is(err, store.ErrTenantExists) {
		t.Fatal(err)
	}
	_, secret, err := st.CreateToken(ctx, tenant, tenant+" "+scope, scope)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// call sends a request with a bearer token, none when token is empty, and returns the status,
// headers and body.
func call(t *testing.T, srv *httptest.Server, token, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
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
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

// send sends a request and returns its status.
func send(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// getAs is get with a token.
func getAs(t *testing.T, srv *httptest.Server, token, path string, into any) int {
	t.Helper()
	status, _, body := call(t, srv, token, "GET", path, "")
	if into != nil {
		if err := json.Unmarshal([]byte(body), into); err != nil {
			t.Fatalf("GET %s: %d %s: %v", path, status, body, err)
		}
	}
	return status
}

// tenantData is what one tenant holds in TestTenantIsolation.
type tenantData struct {
	video   store.Video
	moment  pipeline.Moment // with a thumbnail
	camera  store.Camera
	admin   string
	tokenID int64
}

func fill(t *testing.T, st *store.Store, tenant string) tenantData {
	t.Helper()
	ctx := context.Background()
	d := tenantData{video: seed(t, st, tenant, map[string]map[string]int{"a car": {"car": 1}})}
	d.moment = tracked(t, d.video)
	d.moment.ID = pipeline.MomentID(d.moment.StartedAt, []byte(tenant), 0)
	d.moment.Caption = "a person near a car"
	if _, err := st.WriteMoments(ctx, []pipeline.Moment{d.moment}); err != nil {
		t.Fatal(err)
	}
	var err error
	if d.camera, err = st.AddCamera(ctx, tenant, store.CameraSpec{Name: "gate", URL: "rtsp://h/" + tenant, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	d.admin = token(t, st, tenant, store.ScopeAdmin)
	tokens, err := st.Tokens(ctx, tenant)
	if err != nil || len(tokens) != 1 {
		t.Fatalf("tokens of %s: %v %v", tenant, tokens, err)
	}
	d.tokenID = tokens[0].ID
	return d
}

// TestTenantIsolation: tenant A's admin token finds nothing of tenant B's by id, and its answer
// is the very one for an id that does not exist, so B's ids cannot be probed; A's lists and
// searches never show B's rows.
func TestTenantIsolation(t *testing.T) {
	srv, st, _ := authServer(t, true)
	a, b := fill(t, st, "acme"), fill(t, st, "beta")

	const missingUUID = "0190a5d0-0000-7000-8000-000000000000"
	for _, c := range []struct {
		method, of, missing, body string
	}{
		{"GET", "/api/v1/moments/" + b.moment.ID, "/api/v1/moments/" + missingUUID, ""},
		{"GET", "/api/v1/moments/" + b.moment.ID + "/thumbnail.jpg", "/api/v1/moments/" + missingUUID + "/thumbnail.jpg", ""},
		{"GET", "/api/v1/videos/" + itoa(b.video.ID), "/api/v1/videos/999999", ""},
		{"GET", "/api/v1/videos/" + itoa(b.camera.ID), "/api/v1/videos/999999", ""},
		{"GET", "/api/v1/cameras/" + itoa(b.camera.ID), "/api/v1/cameras/999999", ""},
		{"PATCH", "/api/v1/cameras/" + itoa(b.camera.ID), "/api/v1/cameras/999999", `{"enabled": false}`},
		{"DELETE", "/api/v1/cameras/" + itoa(b.camera.ID), "/api/v1/cameras/999999", ""},
		{"DELETE", "/api/v1/tokens/" + itoa(b.tokenID), "/api/v1/tokens/999999", ""},
	} {
		status, hdr, body := call(t, srv, a.admin, c.method, c.of, c.body)
		mStatus, mHdr, mBody := call(t, srv, a.admin, c.method, c.missing, c.body)
		if status != http.StatusNotFound || status != mStatus || body != mBody || hdr.Get("Content-Type") != mHdr.Get("Content-Type") {
			t.Errorf("%s %s with acme's token: %d %s\nbut a missing one answers %d %s", c.method, c.of, status, body, mStatus, mBody)
		}
		// B's own token still reaches it: the 404 above is the tenant boundary, not missing data.
		if c.method == "GET" {
			if status, _, body := call(t, srv, b.admin, c.method, c.of, ""); status != http.StatusOK {
				t.Errorf("%s %s with beta's token: %d %s", c.method, c.of, status, body)
			}
		}
	}
	// Nothing acme tried changed beta's camera or token.
	if c, err := st.Camera(context.Background(), "beta", b.camera.ID); err != nil || !c.Enabled {
		t.Errorf("beta's camera after acme's attempts: %+v %v", c, err)
	}
	if status, _, _ := call(t, srv, b.admin, "GET", "/api/v1/cameras", ""); status != http.StatusOK {
		t.Errorf("beta's token after acme tried to revoke it: %d", status)
	}

	var videos struct{ Videos []store.Video }
	getAs(t, srv, a.admin, "/api/v1/videos", &videos)
	if len(videos.Videos) != 2 {
		t.Errorf("acme's videos: %+v, want its upload and its camera", videos.Videos)
	}
	for _, v := range videos.Videos {
		if v.Tenant != "acme" {
			t.Errorf("acme's videos list shows %+v", v)
		}
	}
	var cams struct{ Cameras []cameraJSON }
	getAs(t, srv, a.admin, "/api/v1/cameras", &cams)
	if len(cams.Cameras) != 1 || cams.Cameras[0].VideoID != a.camera.ID {
		t.Errorf("acme's cameras: %+v", cams.Cameras)
	}
	var tokens struct{ Tokens []store.Token }
	getAs(t, srv, a.admin, "/api/v1/tokens", &tokens)
	if len(tokens.Tokens) != 1 || tokens.Tokens[0].ID != a.tokenID {
		t.Errorf("acme's tokens: %+v", tokens.Tokens)
	}
	var found struct {
		Results []struct {
			MomentID string `json:"moment_id"`
			VideoID  int64  `json:"video_id"`
		}
	}
	if status := getAs(t, srv, a.admin, "/api/v1/search?q=car", &found); status != http.StatusOK || len(found.Results) == 0 {
		t.Fatalf("acme's search: %d %+v", status, found)
	}
	for _, r := range found.Results {
		if r.VideoID != a.video.ID {
			t.Errorf("acme's search found %+v, of video %d; acme's upload is %d", r, r.VideoID, a.video.ID)
		}
	}
}

// TestAuthRules walks who may do what on a server that requires tokens.
func TestAuthRules(t *testing.T) {
	srv, st, _ := authServer(t, true)
	read, admin := token(t, st, "default", store.ScopeRead), token(t, st, "default", store.ScopeAdmin)
	revoked := token(t, st, "default", store.ScopeAdmin)
	list, err := st.Tokens(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeToken(context.Background(), "default", list[2].ID); err != nil {
		t.Fatal(err)
	}
	camera := `{"name": "gate", "url": "rtsp://h/gate"}`
	for _, c := range []struct {
		name, token, method, path, body string
		status                          int
		code                            string
	}{
		{"page without a token", "", "GET", "/", "", 200, ""},
		{"health without a token", "", "GET", "/healthz", "", 200, ""},
		{"API description without a token", "", "GET", "/api/v1/openapi.json", "", 200, ""},
		{"search without a token", "", "GET", "/api/v1/search?q=car", "", 401, "unauthorized"},
		{"list without a token", "", "GET", "/api/v1/cameras", "", 401, "unauthorized"},
		{"unknown endpoint without a token", "", "GET", "/api/v1/nope", "", 401, "unauthorized"},
		{"metrics without a token", "", "GET", "/metrics", "", 401, "unauthorized"},
		{"unknown token", "vgl_" + strings.Repeat("A", 43), "GET", "/api/v1/cameras", "", 401, "invalid_credentials"},
		{"not a token", "secret", "GET", "/api/v1/cameras", "", 401, "invalid_credentials"},
		{"revoked token", revoked, "GET", "/api/v1/cameras", "", 401, "invalid_credentials"},
		{"bootstrap token with a tail", bootstrap + "x", "GET", "/api/v1/cameras", "", 401, "invalid_credentials"},
		{"read: search", read, "GET", "/api/v1/search?q=car", "", 200, ""},
		{"read: videos", read, "GET", "/api/v1/videos", "", 200, ""},
		{"read: cameras", read, "GET", "/api/v1/cameras", "", 200, ""},
		{"read: add a camera", read, "POST", "/api/v1/cameras", camera, 403, "forbidden"},
		{"read: change a camera", read, "PATCH", "/api/v1/cameras/1", `{}`, 403, "forbidden"},
		{"read: remove a camera", read, "DELETE", "/api/v1/cameras/1", "", 403, "forbidden"},
		{"read: upload", read, "POST", "/api/v1/videos?name=a.mp4", "data", 403, "forbidden"},
		{"read: list tokens", read, "GET", "/api/v1/tokens", "", 403, "forbidden"},
		{"read: make a token", read, "POST", "/api/v1/tokens", `{"name": "x"}`, 403, "forbidden"},
		{"read: revoke a token", read, "DELETE", "/api/v1/tokens/1", "", 403, "forbidden"},
		{"read: metrics", read, "GET", "/metrics", "", 403, "forbidden"},
		{"admin: add a camera", admin, "POST", "/api/v1/cameras", camera, 201, ""},
		{"admin: upload to a server without uploads", admin, "POST", "/api/v1/videos?name=a.mp4", "data", 503, "uploads_disabled"},
		{"admin: add a tenant", admin, "POST", "/api/v1/tenants", `{"id": "acme"}`, 403, "forbidden"},
		{"admin: a token for another tenant", admin, "POST", "/api/v1/tokens", `{"name": "x", "tenant": "acme"}`, 403, "forbidden"},
		{"admin: a token for its own tenant, named", admin, "POST", "/api/v1/tokens", `{"name": "x", "tenant": "default"}`, 201, ""},
		{"admin: metrics", admin, "GET", "/metrics", "", 403, "forbidden"},
		{"admin naming a tenant", admin, "GET", "/api/v1/cameras?tenant=default", "", 400, "tenant_parameter"},
		{"bootstrap: cameras of the configured tenant", bootstrap, "GET", "/api/v1/cameras/1", "", 200, ""},
		{"bootstrap: add a tenant", bootstrap, "POST", "/api/v1/tenants", `{"id": "acme"}`, 201, ""},
		{"bootstrap: add it again", bootstrap, "POST", "/api/v1/tenants", `{"id": "acme"}`, 409, "tenant_exists"},
		{"bootstrap: add a bad tenant", bootstrap, "POST", "/api/v1/tenants", `{"id": "../acme"}`, 400, "invalid_tenant"},
		{"bootstrap: a token for another tenant", bootstrap, "POST", "/api/v1/tokens", `{"name": "x", "tenant": "acme"}`, 201, ""},
		{"bootstrap: a token for an unknown tenant", bootstrap, "POST", "/api/v1/tokens", `{"name": "x", "tenant": "nobody"}`, 400, "unknown_tenant"},
		{"bootstrap: metrics", bootstrap, "GET", "/metrics", "", 200, ""},
	} {
		status, hdr, body := call(t, srv, c.token, c.method, c.path, c.body)
		var p struct{ Code string }
		if c.code != "" {
			decode(t, body, &p)
		}
		if status != c.status || p.Code != c.code {
			t.Errorf("%s: %s %s: %d %.200s, want %d %s", c.name, c.method, c.path, status, body, c.status, c.code)
		}
		if status == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: 401 with WWW-Authenticate %q", c.name, hdr.Get("WWW-Authenticate"))
		}
	}

	// A token is taken from one Authorization header with the Bearer scheme, and nothing else.
	for _, c := range []struct {
		header []string
		want   int
	}{
		{[]string{"Basic " + admin}, 401},
		{[]string{admin}, 401},
		{[]string{"Bearer"}, 401},
		{[]string{"Bearer " + admin, "Bearer " + admin}, 401},
		{[]string{"bearer  " + admin}, 200},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/cameras", nil)
		req.Header["Authorization"] = c.header
		if status := send(t, req); status != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.header, status, c.want)
		}
	}
}

// TestAuthNotRequired: on a server that does not require tokens a request without one acts as an
// admin of the configured tenant, as before tokens; a token still decides, and a bad one is
// refused, never taken for none.
func TestAuthNotRequired(t *testing.T) {
	srv, st, _ := authServer(t, false)
	if status, _, body := call(t, srv, "", "POST", "/api/v1/cameras", `{"name": "gate", "url": "rtsp://h/gate"}`); status != 201 {
		t.Fatalf("add a camera without a token: %d %s", status, body)
	}
	if cams, err := st.Cameras(context.Background(), "default"); err != nil || len(cams) != 1 {
		t.Errorf("cameras of default: %v %v", cams, err)
	}
	if status, _, _ := call(t, srv, "", "GET", "/metrics", ""); status != 200 {
		t.Errorf("metrics without a token: %d", status)
	}
	if status, _, _ := call(t, srv, "", "POST", "/api/v1/tenants", `{"id": "acme"}`); status != 403 {
		t.Errorf("add a tenant without a token: %d, want 403", status)
	}
	if status, _, _ := call(t, srv, "vgl_"+strings.Repeat("A", 43), "GET", "/api/v1/cameras", ""); status != 401 {
		t.Errorf("unknown token: %d, want 401", status)
	}
	// A page of another site gets nothing through this machine's browser: not by a name of its
	// own pointed at 127.0.0.1, nor by asking the browser to post here.
	rebound, _ := http.NewRequest("GET", srv.URL+"/api/v1/cameras", nil)
	rebound.Host = "rebound.example"
	crossSite, _ := http.NewRequest("POST", srv.URL+"/api/v1/cameras", strings.NewReader(`{"name": "x", "url": "rtsp://h/x"}`))
	crossSite.Header.Set("Sec-Fetch-Site", "cross-site")
	if status := send(t, rebound); status != http.StatusUnauthorized {
		t.Errorf("request without a token for another host name: %d, want 401", status)
	}
	if status := send(t, crossSite); status != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", status)
	}
	var cams struct{ Cameras []cameraJSON }
	if getAs(t, srv, token(t, st, "acme", store.ScopeRead), "/api/v1/cameras", &cams); len(cams.Cameras) != 0 {
		t.Errorf("acme's token sees %+v", cams.Cameras)
	}
}

// TestTokenEndpoints makes, lists and revokes a token over the API: its secret is shown once, and
// neither lists nor the log ever show it.
func TestTokenEndpoints(t *testing.T) {
	srv, st, logs := authServer(t, true)
	admin := token(t, st, "default", store.ScopeAdmin)
	status, hdr, body := call(t, srv, admin, "POST", "/api/v1/tokens", `{"name": "dashboard"}`)
	var made struct {
		ID     int64
		Tenant string
		Name   string
		Scope  string
		Token  string
	}
	decode(t, body, &made)
	if status != http.StatusCreated || made.Tenant != "default" || made.Name != "dashboard" || made.Scope != "read" ||
		!strings.HasPrefix(made.Token, "vgl_") || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /api/v1/tokens: %d %v %s", status, hdr, body)
	}
	if status, _, _ := call(t, srv, made.Token, "GET", "/api/v1/search?q=car", ""); status != 200 {
		t.Errorf("the new token searches: %d", status)
	}
	if status, _, _ := call(t, srv, made.Token, "POST", "/api/v1/cameras", `{"name": "a", "url": "rtsp://h/a"}`); status != 403 {
		t.Errorf("the new read token adds a camera: %d, want 403", status)
	}
	status, _, body = call(t, srv, admin, "GET", "/api/v1/tokens", "")
	if status != 200 || strings.Contains(body, made.Token) || strings.Contains(body, `"token"`) || !strings.Contains(body, `"dashboard"`) {
		t.Errorf("GET /api/v1/tokens: %d %s", status, body)
	}

	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"name": "x", "scope": "root"}`, 400, "invalid_token_spec"},
		{`{"name": ""}`, 400, "invalid_token_spec"},
		{`{"name": "x", "secret": "mine"}`, 400, "invalid_body"},
		{`{"name": "x", "scope": "admin"}`, 201, ""},
	} {
		status, _, body := call(t, srv, admin, "POST", "/api/v1/tokens", c.body)
		var p struct{ Code string }
		decode(t, body, &p)
		if status != c.status || p.Code != c.code {
			t.Errorf("POST /api/v1/tokens %s: %d %s, want %d %s", c.body, status, body, c.status, c.code)
		}
	}

	path := "/api/v1/tokens/" + itoa(made.ID)
	if status, _, body := call(t, srv, admin, "DELETE", path, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE %s: %d %s", path, status, body)
	}
	status, _, body = call(t, srv, made.Token, "GET", "/api/v1/search?q=car", "")
	if status != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Errorf("a revoked token: %d %s", status, body)
	}
	if status, _, _ := call(t, srv, admin, "DELETE", "/api/v1/tokens/abc", ""); status != 400 {
		t.Errorf("DELETE a token by a bad id: %d, want 400", status)
	}
	// The admin may revoke its own token, and then is refused.
	var mine struct{ Tokens []store.Token }
	getAs(t, srv, admin, "/api/v1/tokens", &mine)
	if status, _, _ := call(t, srv, admin, "DELETE", "/api/v1/tokens/"+itoa(mine.Tokens[0].ID), ""); status != 204 {
		t.Errorf("revoke its own token: %d", status)
	}
	if status, _, _ := call(t, srv, admin, "GET", "/api/v1/tokens", ""); status != 401 {
		t.Errorf("after revoking itself: %d, want 401", status)
	}

	for _, secret := range []string{made.Token, admin, bootstrap} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows a secret:\n%s", logs)
		}
	}
	if !strings.Contains(logs.String(), "token created") || !strings.Contains(logs.String(), "token revoked") ||
		!strings.Contains(logs.String(), "revoked token used") {
		t.Errorf("the log does not record tokens made, revoked and used once revoked:\n%s", logs)
	}
}

// FuzzAuthorization sends arbitrary Authorization headers: whatever arrives, the answer is the
// configured tenant's cameras for the one valid token and 401 for anything else, never a server
// error.
func FuzzAuthorization(f *testing.F) {
	srv, st, _ := authServer(f, true)
	valid := token(f, st, "default", store.ScopeRead)
	f.Add("Bearer " + valid)
	f.Add("Bearer " + bootstrap)
	f.Add("bearer vgl_" + strings.Repeat("-", 43))
	f.Add("Basic dXNlcjpwYXNz")
	f.Add(" Bearer  " + valid + "\t")
	f.Fuzz(func(t *testing.T, header string) {
		req, err := http.NewRequest("GET", srv.URL+"/api/v1/cameras", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Skip("the client does not send it:", err)
		}
		resp.Body.Close()
		// The server reads header values without their surrounding blanks.
		scheme, secret, _ := strings.Cut(strings.Trim(header, " \t"), " ")
		secret = strings.TrimSpace(secret)
		good := strings.EqualFold(scheme, "Bearer") && (secret == valid || secret == bootstrap)
		if want := map[bool]int{true: 200, false: 401}[good]; resp.StatusCode != want {
			t.Fatalf("Authorization %q: %d, want %d", header, resp.StatusCode, want)
		}
	})
}
