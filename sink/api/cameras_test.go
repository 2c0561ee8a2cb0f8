package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/sink/api"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

// Passwords the tests give cameras; no response may contain them.
var secrets = []string{"s3cr3t-Pw", "n3w-Secret", "expl1cit-Pw"}

// do sends a request and returns the status, headers and body, failing the test if the body
// shows a password.
func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, s := range secrets {
		if strings.Contains(string(data), s) {
			t.Errorf("%s %s: response shows a password: %s", method, path, data)
		}
	}
	return resp.StatusCode, resp.Header, string(data)
}

type cameraJSON struct {
	VideoID       int64   `json:"video_id"`
	Tenant        string  `json:"tenant"`
	Name          string  `json:"name"`
	URL           string  `json:"url"`
	Username      string  `json:"username"`
	AnalysisFPS   float64 `json:"analysis_fps"`
	KeyframesOnly bool    `json:"keyframes_only"`
	Enabled       bool    `json:"enabled"`
	Declared      string  `json:"declared"`
	State         string  `json:"state"`
}

func decode(t *testing.T, body string, into any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), into); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

func TestCameraCRUD(t *testing.T) {
	srv, st := newServer(t)
	code, hdr, body := do(t, srv, "POST", "/api/v1/cameras",
		`{"name": "gate", "url": "rtsp://admin:s3cr3t-Pw@10.0.0.5:554/live", "analysis_fps": 2.5, "keyframes_only": true}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	var gate cameraJSON
	decode(t, body, &gate)
	if gate.Name != "gate" || gate.URL != "rtsp://admin:xxxxx@10.0.0.5:554/live" || gate.Username != "admin" ||
		gate.AnalysisFPS != 2.5 || !gate.KeyframesOnly || !gate.Enabled || gate.Declared != "api" || gate.Tenant != "default" {
		t.Errorf("POST answered %s", body)
	}
	if strings.Contains(body, `"state"`) || strings.Contains(body, "password") {
		t.Errorf("POST answered %s: no state without supervisors, and no password field", body)
	}
	loc := hdr.Get("Location")
	if code, _, body := do(t, srv, "GET", loc, ""); code != 200 || !strings.Contains(body, `"name":"gate"`) {
		t.Errorf("GET Location %s: %d %s", loc, code, body)
	}
	// The registry hands the RTSP client the full URL.
	if c, err := st.Camera(context.Background(), "default", gate.VideoID); err != nil || c.StreamURL() != "rtsp://admin:s3cr3t-Pw@10.0.0.5:554/live" {
		t.Errorf("stored %v: %v", c, err)
	}

	code, _, body = do(t, srv, "POST", "/api/v1/cameras",
		`{"name": "door", "url": "rtsps://cam.local/live", "username": "op", "password": "expl1cit-Pw", "enabled": false}`)
	var door cameraJSON
	decode(t, body, &door)
	if code != 201 || door.URL != "rtsps://op:xxxxx@cam.local/live" || door.Enabled || door.AnalysisFPS != 0 {
		t.Errorf("POST with explicit credentials: %d %s", code, body)
	}

	var list struct{ Cameras []cameraJSON }
	code, _, body = do(t, srv, "GET", "/api/v1/cameras", "")
	decode(t, body, &list)
	if code != 200 || len(list.Cameras) != 2 || list.Cameras[0].Name != "door" || list.Cameras[1].URL != gate.URL {
		t.Errorf("GET list: %d %s", code, body)
	}

	path := "/api/v1/cameras/" + itoa(gate.VideoID)
	code, _, body = do(t, srv, "PATCH", path, `{"name": "front gate", "url": "rtsp://viewer:n3w-Secret@10.0.0.6/main", "analysis_fps": null}`)
	var up cameraJSON
	decode(t, body, &up)
	if code != 200 || up.Name != "front gate" || up.URL != "rtsp://viewer:xxxxx@10.0.0.6/main" || up.AnalysisFPS != 0 || !up.KeyframesOnly {
		t.Errorf("PATCH: %d %s", code, body)
	}
	code, _, body = do(t, srv, "PATCH", path, `{"enabled": false, "keyframes_only": null}`)
	decode(t, body, &up)
	if code != 200 || up.Enabled || up.KeyframesOnly || up.URL != "rtsp://viewer:xxxxx@10.0.0.6/main" {
		t.Errorf("PATCH flags: %d %s", code, body)
	}
	if c, _ := st.Camera(context.Background(), "default", gate.VideoID); c.StreamURL() != "rtsp://viewer:n3w-Secret@10.0.0.6/main" {
		t.Errorf("credentials after PATCH: %v", c)
	}

	if code, _, body := do(t, srv, "DELETE", path, ""); code != http.StatusNoContent || body != "" {
		t.Errorf("DELETE: %d %s", code, body)
	}
	if code, _, _ := do(t, srv, "GET", path, ""); code != 404 {
		t.Errorf("GET after DELETE: %d", code)
	}
	if code, _, _ := do(t, srv, "DELETE", path, ""); code != 404 {
		t.Errorf("DELETE twice: %d", code)
	}
}

func TestCameraErrors(t *testing.T) {
	srv, st := newServer(t)
	ctx := context.Background()
	if err := st.SyncConfigCameras(ctx, "default", []store.CameraSpec{{Name: "yard", URL: "rtsp://h/yard", Enabled: true}}); err != nil {
		t.Fatal(err)
	}
	yard, err := st.CameraByName(ctx, "default", "yard")
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := do(t, srv, "POST", "/api/v1/cameras", `{"name": "gate", "url": "rtsp://admin:s3cr3t-Pw@h/gate"}`)
	if code != 201 {
		t.Fatalf("POST: %d %s", code, body)
	}
	var gate cameraJSON
	decode(t, body, &gate)
	gatePath := "/api/v1/cameras/" + itoa(gate.VideoID)

	for _, c := range []struct {
		method, path, body string
		status             int
		code, detail       string
	}{
		{"POST", "/api/v1/cameras", `{"name": "gate", "url": "rtsp://h/x"}`, 409, "camera_exists", `camera "gate": name already in use`},
		{"POST", "/api/v1/cameras", `{"name": "", "url": "http://u:s3cr3t-Pw@h/", "analysis_fps": 90}`, 400, "invalid_camera", "name must not be empty"},
		{"POST", "/api/v1/cameras", `{"name": "a", "url": "rtsp://u:s3cr3t-Pw@h:port/"}`, 400, "invalid_camera", `invalid port ":port"`},
		{"POST", "/api/v1/cameras", `{"name": "a", "url": "rtsp://u:s3cr3t-Pw@h/", "password": "expl1cit-Pw"}`, 400, "invalid_camera", "not both"},
		{"POST", "/api/v1/cameras", `{"name": "a", "url": "rtsp://h/", "passwd": "s3cr3t-Pw"}`, 400, "invalid_body", `unknown field "passwd"`},
		{"POST", "/api/v1/cameras", `{"name": "a", "url": "rtsp://h/", "password": 5}`, 400, "invalid_body", "password must not be a JSON number"},
		{"POST", "/api/v1/cameras", `{"name": "a", "url": "rtsp://h/"} {}`, 400, "invalid_body", "single JSON object"},
		{"POST", "/api/v1/cameras", `{"name": "a", "url": "rtsp://u:s3cr3t-Pw@h/"`, 400, "invalid_body", "ends early"},
		{"POST", "/api/v1/cameras", `["rtsp://u:s3cr3t-Pw@h/"]`, 400, "invalid_body", "must be a JSON object"},
		{"POST", "/api/v1/cameras", ``, 400, "invalid_body", "must be a JSON object"},
		{"POST", "/api/v1/cameras", `{"name": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large", "65536 bytes"},
		{"POST", "/api/v1/cameras?tenant=Bad!", `{}`, 400, "tenant_parameter", "comes from the token"},
		{"GET", "/api/v1/cameras/abc", "", 400, "invalid_id", ""},
		{"GET", "/api/v1/cameras/999", "", 404, "not_found", "no such camera"},
		{"PATCH", gatePath, `{"name": "yard"}`, 409, "camera_exists", ""},
		{"PATCH", gatePath, `{"url": null}`, 400, "invalid_camera", "url: must not be empty"},
		{"PATCH", gatePath, `{"analysis_fps": "fast"}`, 400, "invalid_body", "analysis_fps must not be a JSON string"},
		{"PATCH", gatePath, `{"analysis_fps": 0.0001, "password": "n3w-Secret", "username": null}`, 400, "invalid_camera", "a password needs a username"},
		{"PATCH", "/api/v1/cameras/" + itoa(yard.ID), `{"enabled": false}`, 409, "camera_configured", "declared in the configuration file"},
		{"DELETE", "/api/v1/cameras/" + itoa(yard.ID), "", 409, "camera_configured", ""},
	} {
		status, _, body := do(t, srv, c.method, c.path, c.body)
		var p struct{ Code, Detail string }
		decode(t, body, &p)
		if status != c.status || p.Code != c.code || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s %s %.60s: %d %s, want %d %s %q", c.method, c.path, c.body, status, body, c.status, c.code, c.detail)
		}
	}
	// Nothing above changed gate.
	var got cameraJSON
	_, _, body = do(t, srv, "GET", gatePath, "")
	decode(t, body, &got)
	if got != gate {
		t.Errorf("gate changed by failed requests: %+v, was %+v", got, gate)
	}
}

// states is the supervisors' side of the API, as a fixed table.
type states map[int64]ingest.State

func (s states) CameraState(id int64) (ingest.State, bool) {
	st, ok := s[id]
	return st, ok
}

func TestCameraState(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	watched, err := st.AddCamera(ctx, "default", store.CameraSpec{Name: "gate", URL: "rtsp://h/gate", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := st.AddCamera(ctx, "default", store.CameraSpec{Name: "yard", URL: "rtsp://h/yard"})
	if err != nil {
		t.Fatal(err)
	}
	known := states{watched.ID: {Phase: ingest.Streaming, Since: time.Now(), FramesIn: 10, FramesOut: 9, Dropped: 1}}
	srv := httptest.NewServer(api.New(api.Config{Tenant: "default", Cameras: known}, st, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	defer srv.Close()

	var got map[string]any
	_, _, body := do(t, srv, "GET", "/api/v1/cameras/"+itoa(watched.ID), "")
	decode(t, body, &got)
	if got["state"] != "streaming" || got["frames_in"] != 10.0 || got["dropped"] != 1.0 || got["name"] != "gate" {
		t.Errorf("supervised camera: %s", body)
	}
	var list struct{ Cameras []map[string]any }
	_, _, body = do(t, srv, "GET", "/api/v1/cameras", "")
	decode(t, body, &list)
	if len(list.Cameras) != 2 || list.Cameras[0]["state"] != "streaming" || list.Cameras[1]["name"] != idle.Name {
		t.Fatalf("list: %s", body)
	}
	if _, ok := list.Cameras[1]["state"]; ok {
		t.Errorf("an unsupervised camera shows a state: %v", list.Cameras[1])
	}
}

// FuzzCameraBody sends arbitrary bodies to POST and PATCH: whatever arrives, the answer is a
// camera or a problem, never a server error.
func FuzzCameraBody(f *testing.F) {
	st := storetest.Open(f)
	srv := httptest.NewServer(api.New(api.Config{Tenant: "default"}, st, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	f.Cleanup(srv.Close)
	c, err := st.AddCamera(context.Background(), "default", store.CameraSpec{Name: "fuzz", URL: "rtsp://h/fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	path := "/api/v1/cameras/" + itoa(c.ID)
	f.Add(false, `{"name": "gate", "url": "rtsp://admin:pw@h/x", "analysis_fps": 5}`)
	f.Add(true, `{"url": "rtsp://u:p@h:9/x", "username": null, "password": "x", "enabled": null}`)
	f.Add(true, `{"analysis_fps": 1e400}`)
	f.Add(false, `{"name": "\u0000", "url": "rtsp://[::1]:0/"}`)
	f.Add(true, `{"name": {"a": 1}}`)
	f.Fuzz(func(t *testing.T, patch bool, body string) {
		method, target := "POST", "/api/v1/cameras"
		if patch {
			method, target = "PATCH", path
		}
		req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 || !json.Valid(data) {
			t.Fatalf("%s %q: %d %s", method, body, resp.StatusCode, data)
		}
	})
}

// TestCameraMotionMask: a mask given when a camera is added comes back, a patch replaces it, null
// removes it, and a mask outside the frame is refused with the reason.
func TestCameraMotionMask(t *testing.T) {
	st := storetest.Open(t)
	srv := httptest.NewServer(api.New(api.Config{Tenant: "default"}, st, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	clock := `[[{"x":0.8,"y":0},{"x":1,"y":0},{"x":1,"y":0.1},{"x":0.8,"y":0.1}]]`
	status, _, body := do(t, srv, "POST", "/api/v1/cameras", `{"name":"yard","url":"rtsp://cam/yard","motion_mask":`+clock+`}`)
	var cam struct {
		ID         int64             `json:"video_id"`
		MotionMask []configs.Polygon `json:"motion_mask"`
	}
	if err := json.Unmarshal([]byte(body), &cam); err != nil || status != http.StatusCreated || len(cam.MotionMask) != 1 || cam.MotionMask[0][2] != (configs.Point{X: 1, Y: 0.1}) {
		t.Fatalf("POST with a mask: %d %s", status, body)
	}
	path := "/api/v1/cameras/" + itoa(cam.ID)
	status, _, body = do(t, srv, "PATCH", path, `{"motion_mask":[`+clock[1:len(clock)-1]+`,[{"x":0,"y":0.5},{"x":0.3,"y":0.5},{"x":0.3,"y":1}]]}`)
	if err := json.Unmarshal([]byte(body), &cam); err != nil || status != http.StatusOK || len(cam.MotionMask) != 2 {
		t.Fatalf("PATCH to two polygons: %d %s", status, body)
	}
	status, _, body = do(t, srv, "PATCH", path, `{"motion_mask":null}`)
	cam.MotionMask = nil
	if err := json.Unmarshal([]byte(body), &cam); err != nil || status != http.StatusOK || len(cam.MotionMask) != 0 {
		t.Fatalf("PATCH null: %d %s", status, body)
	}
	status, _, body = do(t, srv, "PATCH", path, `{"motion_mask":[[{"x":0,"y":0},{"x":2,"y":0},{"x":0,"y":1}]]}`)
	if status != http.StatusBadRequest || !strings.Contains(body, "motion_mask") || !strings.Contains(body, "not within the frame") {
		t.Errorf("mask outside the frame: %d %s", status, body)
	}
}
