package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/api"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func newServer(t *testing.T) (*httptest.Server, *store.Store) {
	t.Helper()
	st := storetest.Open(t)
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(api.New(api.Config{Tenant: "default"}, st, reg, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv, st
}

func seed(t *testing.T, st *store.Store, tenant string, captions map[string]map[string]int) store.Video {
	t.Helper()
	ctx := context.Background()
	v, err := st.QueueUpload(ctx, tenant, "/clips/"+tenant+".mp4", tenant+".mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	var ms []pipeline.Moment
	i := 0
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	for caption, objects := range captions {
		at := t0.Add(time.Duration(i) * time.Minute)
		ms = append(ms, pipeline.Moment{
			ID: pipeline.MomentID(at, []byte(tenant), 0), Tenant: tenant, VideoID: v.ID, Source: v.Name,
			StartS: float64(i * 60), EndS: float64(i*60 + 4), StartedAt: at, EndedAt: at.Add(4 * time.Second),
			Objects: objects, Caption: caption,
		})
		i++
	}
	if _, err := st.WriteMoments(ctx, ms); err != nil {
		t.Fatal(err)
	}
	return v
}

func get(t *testing.T, srv *httptest.Server, path string, into any) int {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %d %s: %v", path, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode
}

func TestSearchContract(t *testing.T) {
	srv, st := newServer(t)
	seed(t, st, "default", map[string]map[string]int{
		"2 people and a car": {"person": 2, "car": 1},
		"a dog":              {"dog": 1},
		"a bicycle":          {"bicycle": 1},
	})
	seed(t, st, "other", map[string]map[string]int{"a car": {"car": 1}})

	var raw struct {
		Results  []map[string]any
		Degraded []string
	}
	if code := get(t, srv, "/api/v1/search?q=car&top_k=5", &raw); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	// No embedder is configured: full text answers, and says the vector path is missing.
	if len(raw.Results) != 1 || len(raw.Degraded) != 1 || raw.Degraded[0] != "embedder" {
		t.Fatalf("results %v, degraded %v: want one result of the default tenant, degraded [embedder]", raw.Results, raw.Degraded)
	}
	for _, field := range []string{"moment_id", "video_id", "source", "start_s", "end_s", "started_at", "ended_at", "caption",
		"objects", "score", "snippet", "thumbnail_url"} {
		if _, ok := raw.Results[0][field]; !ok {
			t.Errorf("result lacks %q: %v", field, raw.Results[0])
		}
	}
	// Stemming and labels: "people" finds the person label, and plural queries find singular labels.
	var resp struct{ Results []struct{ Caption string } }
	get(t, srv, "/api/v1/search?q="+url.QueryEscape("people with dogs"), &resp)
	if len(resp.Results) != 2 {
		t.Errorf("\"people with dogs\": %+v, want the people moment and the dog moment", resp.Results)
	}
	getAs(t, srv, token(t, st, "other", store.ScopeRead), "/api/v1/search?q=car", &resp)
	if len(resp.Results) != 1 || resp.Results[0].Caption != "a car" {
		t.Errorf("tenant other: %+v", resp.Results)
	}
}

func TestBadRequests(t *testing.T) {
	srv, _ := newServer(t)
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/search", 400, "invalid_query"},
		{"/api/v1/search?q=" + url.QueryEscape("   "), 400, "invalid_query"},
		{"/api/v1/search?q=car&top_k=0x10", 400, "invalid_query"},
		{"/api/v1/search?q=car&top_k=1000", 400, "invalid_query"},
		{"/api/v1/search?q=" + url.QueryEscape(strings.Repeat("car ", 200)), 400, "invalid_query"},
		{"/api/v1/search?q=" + url.QueryEscape("car'; DROP TABLE videos; --"), 200, ""},
		{"/api/v1/search?q=" + url.QueryEscape("\xff\xfe"), 400, "invalid_query"},
		{"/api/v1/search?q=" + url.QueryEscape("!!! & | <-> :* ()"), 200, ""},
		{"/api/v1/search?q=car&tenant=" + url.QueryEscape("../etc"), 400, "tenant_parameter"},
		{"/api/v1/videos/abc", 400, "invalid_id"},
		{"/api/v1/videos/999", 404, "not_found"},
		{"/api/v1/videos/99999999999", 400, "invalid_id"},
		{"/api/v1/cameras/99999999999", 400, "invalid_id"},
		{"/api/v1/nope", 404, "not_found"},
	} {
		var body map[string]any
		code := get(t, srv, c.path, &body)
		if code != c.code || (c.want != "" && body["code"] != c.want) {
			t.Errorf("GET %.60s: %d %v, want %d %s", c.path, code, body, c.code, c.want)
		}
	}
}

func TestVideoStatusAndMetrics(t *testing.T) {
	srv, st := newServer(t)
	v := seed(t, st, "default", map[string]map[string]int{"a car": {"car": 1}})
	ctx := context.Background()
	if err := st.StartIndexing(ctx, v.ID, 200, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Progress(ctx, v.ID, 50); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status  string
		Percent float64
	}
	if code := get(t, srv, "/api/v1/videos/"+itoa(v.ID), &got); code != 200 || got.Status != "indexing" || got.Percent != 25 {
		t.Errorf("video status: %d %+v", code, got)
	}
	if code := getAs(t, srv, token(t, st, "other", store.ScopeRead), "/api/v1/videos/"+itoa(v.ID), nil); code != 404 {
		t.Errorf("another tenant's video: %d, want 404", code)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %v", err)
	}
	resp.Body.Close()
	if code := get(t, srv, "/healthz", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
