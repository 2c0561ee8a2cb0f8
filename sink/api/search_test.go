package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/sink/store"
)

// TestSearchAdminEndpoints: why-not-found, synonyms and pins are the tenant admin's, and scoped to
// the tenant like every other endpoint.
func TestSearchAdminEndpoints(t *testing.T) {
	srv, st, _ := authServer(t, true)
	v := seed(t, st, "default", map[string]map[string]int{"2 people and a car": {"person": 2, "car": 1}, "a dog": {"dog": 1}})
	seed(t, st, "rival", map[string]map[string]int{"a car": {"car": 1}})
	admin, reader, rival := token(t, st, "default", store.ScopeAdmin), token(t, st, "default", store.ScopeRead), token(t, st, "rival", store.ScopeAdmin)
	var found struct {
		Results []struct {
			MomentID string `json:"moment_id"`
			Caption  string
			Pinned   bool
		}
	}
	getAs(t, srv, admin, "/api/v1/search?q=dog", &found)
	if len(found.Results) != 1 {
		t.Fatalf("dog: %+v", found)
	}
	dog := found.Results[0].MomentID
	var rivalFound struct {
		Results []struct {
			MomentID string `json:"moment_id"`
		}
	}
	getAs(t, srv, rival, "/api/v1/search?q=car", &rivalFound)

	// Why: the admin learns the dog moment matched no word of "car"; a reader may not ask; a
	// moment of another tenant is as unknown as a missing one.
	why := "/api/v1/search/why?q=car&moment_id=" + dog
	status, _, body := call(t, srv, admin, "GET", why, "")
	if status != http.StatusOK || !strings.Contains(body, "no query word matched") {
		t.Errorf("why: %d %s", status, body)
	}
	if status, _, _ := call(t, srv, reader, "GET", why, ""); status != http.StatusForbidden {
		t.Errorf("why with a read token: %d, want 403", status)
	}
	_, _, missing := call(t, srv, admin, "GET", "/api/v1/search/why?q=car&moment_id=01a2014f-c39f-71eb-8e1a-7c31255fe3a2", "")
	status, _, foreign := call(t, srv, admin, "GET", "/api/v1/search/why?q=car&moment_id="+rivalFound.Results[0].MomentID, "")
	if status != http.StatusNotFound || foreign != missing {
		t.Errorf("why about another tenant's moment: %d %s, want the 404 of a missing one: %s", status, foreign, missing)
	}
	if status, _, _ := call(t, srv, admin, "GET", "/api/v1/search/why?q=car&moment_id=12", ""); status != http.StatusBadRequest {
		t.Errorf("why without moment_id: %d", status)
	}

	// Synonyms: "mutt" finds nothing until the admin says it means dog; the rival tenant's
	// list stays the default.
	getAs(t, srv, admin, "/api/v1/search?q=mutt", &found)
	if len(found.Results) != 0 {
		t.Errorf("mutt before: %+v", found)
	}
	list := `{"groups": [["dog", "Hound", "mutt"], ["car", "vehicle"]]}`
	if status, _, _ := call(t, srv, reader, "PUT", "/api/v1/search/synonyms", list); status != http.StatusForbidden {
		t.Errorf("synonyms with a read token: %d, want 403", status)
	}
	if status, _, body := call(t, srv, admin, "PUT", "/api/v1/search/synonyms", list); status != http.StatusOK || !strings.Contains(body, `"hound"`) {
		t.Errorf("put synonyms: %d %s", status, body)
	}
	getAs(t, srv, admin, "/api/v1/search?q=mutt", &found)
	if len(found.Results) != 1 || found.Results[0].MomentID != dog {
		t.Errorf("mutt after: %+v", found)
	}
	var groups struct{ Groups [][]string }
	getAs(t, srv, rival, "/api/v1/search/synonyms", &groups)
	if len(groups.Groups) < 5 || strings.Contains(strings.Join(flatten(groups.Groups), " "), "mutt") {
		t.Errorf("rival's synonyms %v, want the defaults", groups.Groups)
	}
	for _, bad := range []string{`{"groups": [["dog"]]}`, `{"groups": [["dog", "a;b"]]}`, `{"groups": 3}`, `{"groups": [], "x": 1}`, `not json`} {
		if status, _, body := call(t, srv, admin, "PUT", "/api/v1/search/synonyms", bad); status != http.StatusBadRequest {
			t.Errorf("synonyms %s: %d %s, want 400", bad, status, body)
		}
	}

	// Pins: the admin pins the dog moment to "car"; it leads that query's results.
	pin := `{"query": "Car", "moment_ids": ["` + dog + `"]}`
	if status, _, body := call(t, srv, admin, "PUT", "/api/v1/search/pins", pin); status != http.StatusOK || !strings.Contains(body, dog) {
		t.Errorf("put pins: %d %s", status, body)
	}
	getAs(t, srv, reader, "/api/v1/search?q=car", &found)
	if len(found.Results) != 2 || found.Results[0].MomentID != dog || !found.Results[0].Pinned {
		t.Errorf("car after pinning the dog: %+v", found)
	}
	if status, _, _ := call(t, srv, rival, "PUT", "/api/v1/search/pins", pin); status != http.StatusBadRequest {
		t.Errorf("pinning another tenant's moment: %d, want 400", status)
	}
	if status, _, body := call(t, srv, reader, "GET", "/api/v1/search/pins", ""); status != http.StatusOK || !strings.Contains(body, dog) {
		t.Errorf("pins with a read token: %d %s, want them listed", status, body)
	}
	_ = v
}

func flatten(groups [][]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// TestSearchFiltersOverHTTP: the filters travel as query parameters, and bad ones are 400s that
// say what to fix.
func TestSearchFiltersOverHTTP(t *testing.T) {
	srv, st := newServer(t)
	v := seed(t, st, "default", map[string]map[string]int{"3 people": {"person": 3}, "a person": {"person": 1}})
	var found struct {
		Results    []struct{ Caption string }
		NextCursor string `json:"next_cursor"`
	}
	get(t, srv, "/api/v1/search?q=person&objects=person:2", &found)
	if len(found.Results) != 1 || found.Results[0].Caption != "3 people" {
		t.Errorf("objects=person:2: %+v", found)
	}
	get(t, srv, "/api/v1/search?q=person&camera="+url.QueryEscape(v.Name)+"&top_k=1", &found)
	if len(found.Results) != 1 || found.NextCursor == "" {
		t.Errorf("camera filter, one a page: %+v", found)
	}
	first := found.Results[0].Caption
	var second struct {
		Results    []struct{ Caption string }
		NextCursor string `json:"next_cursor"`
	}
	get(t, srv, "/api/v1/search?q=person&top_k=1&cursor="+found.NextCursor+"&camera="+url.QueryEscape(v.Name), &second)
	if len(second.Results) != 1 || second.Results[0].Caption == first || second.NextCursor != "" {
		t.Errorf("second page: %+v after %q", second, first)
	}
	for path, want := range map[string]string{
		"/api/v1/search?q=person&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z": "from must be before to",
		"/api/v1/search?q=person&last=soon":                                         "last must be",
		"/api/v1/search?q=person&camera=nowhere":                                    `no camera or file named \"nowhere\"`,
		"/api/v1/search?q=" + url.QueryEscape(strings.Repeat("é", 501)):             "longer than 500",
		"/api/v1/search?q=%27%3B+DROP+TABLE+videos%3B--&kind=tv":                    "kind must be live or upload",
	} {
		status, _, body := call(t, srv, "", "GET", path, "")
		var p struct{ Code, Detail string }
		json.Unmarshal([]byte(body), &p)
		if status != http.StatusBadRequest || p.Code != "invalid_query" || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s, want 400 invalid_query saying %q", path, status, body, want)
		}
	}
}

// TestSearchWhenDatabaseIsDown: 503 with Retry-After and a problem document, never a stack trace.
func TestSearchWhenDatabaseIsDown(t *testing.T) {
	srv, st := newServer(t)
	st.Close()
	status, header, body := call(t, srv, "", "GET", "/api/v1/search?q=car", "")
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(body, `"code":"unavailable"`) || strings.Contains(body, "goroutine") {
		t.Errorf("search with the database down: %d %v %s", status, header, body)
	}
}

// TestWrongMethod: a path served under other methods answers 405 with Allow, an unknown one 404.
func TestWrongMethod(t *testing.T) {
	srv, _ := newServer(t)
	status, header, body := call(t, srv, "", "PUT", "/api/v1/videos", "")
	if status != http.StatusMethodNotAllowed || header.Get("Allow") != "GET, POST" || !strings.Contains(body, "method_not_allowed") {
		t.Errorf("PUT /api/v1/videos: %d Allow %q %s", status, header.Get("Allow"), body)
	}
	if status, _, _ := call(t, srv, "", "GET", "/api/v1/nothing", ""); status != http.StatusNotFound {
		t.Errorf("GET /api/v1/nothing: %d, want 404", status)
	}
}
