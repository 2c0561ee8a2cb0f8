package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

const secret = "s3cr3t-Pw"

func ptr[T any](v T) *T { return &v }

// noSecret fails the test if what was shown of a camera contains its password.
func noSecret(t *testing.T, what string, shown any) {
	t.Helper()
	if s := fmt.Sprint(shown); strings.Contains(s, secret) {
		t.Errorf("%s shows the password: %s", what, s)
	}
}

func TestCameraCRUD(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	c, err := s.AddCamera(ctx, "acme", store.CameraSpec{
		Name: " gate ", URL: "rtsp://admin:" + secret + "@10.0.0.5:554/Streaming/101?profile=1", AnalysisFPS: 2.2, Enabled: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "gate" || c.Tenant != "acme" || c.Username != "admin" || c.AnalysisFPS != 2.2 || !c.Enabled ||
		c.Declared != store.DeclaredAPI || c.ID == 0 {
		t.Errorf("added %+v", c)
	}
	if want := "rtsp://admin:xxxxx@10.0.0.5:554/Streaming/101?profile=1"; c.URL != want {
		t.Errorf("url %q, want %q", c.URL, want)
	}
	if want := "rtsp://admin:" + secret + "@10.0.0.5:554/Streaming/101?profile=1"; c.StreamURL() != want {
		t.Errorf("stream url %q, want %q", c.StreamURL(), want)
	}
	js, _ := json.Marshal(c)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("added", "camera", c)
	for what, shown := range map[string]any{"JSON": string(js), "fmt %v": c, "fmt %+v": fmt.Sprintf("%+v", c), "slog": logged.String()} {
		noSecret(t, what, shown)
	}

	v, err := s.Video(ctx, "acme", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != "camera" || v.Name != "gate" || v.Path != c.URL || v.Status != store.StatusReady {
		t.Errorf("videos row %+v", v)
	}

	// Explicit credentials are the same as credentials in the URL; 0 fps is the default.
	door, err := s.AddCamera(ctx, "acme", store.CameraSpec{Name: "door", URL: "rtsps://cam.local/live", Username: "op", Password: "p@ss:/w", KeyframesOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if door.URL != "rtsps://op:xxxxx@cam.local/live" || door.StreamURL() != "rtsps://op:p%40ss%3A%2Fw@cam.local/live" ||
		door.AnalysisFPS != 0 || !door.KeyframesOnly || door.Enabled {
		t.Errorf("door %+v, stream url %q", door, door.StreamURL())
	}

	list, err := s.Cameras(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].Name != "door" || !reflect.DeepEqual(list[1], c) {
		t.Fatalf("list %v: %v", list, err)
	}
	if got, err := s.Camera(ctx, "acme", c.ID); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("camera %v: %v, want %v", got, err, c)
	}
	if got, err := s.CameraByName(ctx, "acme", "door"); err != nil || !reflect.DeepEqual(got, door) {
		t.Errorf("camera by name %v: %v, want %v", got, err, door)
	}

	// A URL without user info keeps the credentials; one with user info replaces them.
	up, err := s.UpdateCamera(ctx, "acme", c.ID, store.CameraPatch{Name: ptr("front gate"), URL: ptr("rtsp://10.0.0.6/main"), AnalysisFPS: ptr(0.0)})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "front gate" || up.StreamURL() != "rtsp://admin:"+secret+"@10.0.0.6/main" || up.AnalysisFPS != 0 || !up.UpdatedAt.After(c.UpdatedAt) {
		t.Errorf("updated %+v", up)
	}
	up, err = s.UpdateCamera(ctx, "acme", c.ID, store.CameraPatch{URL: ptr("rtsp://viewer@10.0.0.6/main"), Enabled: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if up.StreamURL() != "rtsp://viewer@10.0.0.6/main" || up.URL != "rtsp://viewer@10.0.0.6/main" || up.Enabled {
		t.Errorf("credentials from the new url: %+v, stream url %q", up, up.StreamURL())
	}
	if v, _ := s.Video(ctx, "acme", c.ID); v.Name != "front gate" || v.Path != up.URL {
		t.Errorf("videos row not kept in step: %+v", v)
	}

	if err := s.DeleteCamera(ctx, "acme", c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Camera(ctx, "acme", c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted camera: %v, want ErrNotFound", err)
	}
	if err := s.DeleteCamera(ctx, "acme", c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting twice: %v, want ErrNotFound", err)
	}
	if _, err := s.Video(ctx, "acme", c.ID); err != nil {
		t.Errorf("a removed camera's videos row (and moments) must stay: %v", err)
	}
}

func TestCameraValidation(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	for _, c := range []struct {
		spec store.CameraSpec
		want string
	}{
		{store.CameraSpec{URL: "rtsp://h/x"}, "name must not be empty"},
		{store.CameraSpec{Name: "   ", URL: "rtsp://h/x"}, "name must not be empty"},
		{store.CameraSpec{Name: strings.Repeat("é", 101), URL: "rtsp://h/x"}, "at most 100 characters"},
		{store.CameraSpec{Name: "a\nb", URL: "rtsp://h/x"}, "control characters"},
		{store.CameraSpec{Name: "a"}, "url: must not be empty"},
		{store.CameraSpec{Name: "a", URL: "http://u:" + secret + "@h/x"}, `scheme must be rtsp or rtsps, got "http"`},
		{store.CameraSpec{Name: "a", URL: "rtsp:/x"}, "must be rtsp://host[:port]/path"},
		{store.CameraSpec{Name: "a", URL: "rtsp://u:" + secret + "@:554/x"}, "must be rtsp://host[:port]/path"},
		{store.CameraSpec{Name: "a", URL: "rtsp://u:" + secret + "@h:port/x"}, `invalid port ":port"`},
		{store.CameraSpec{Name: "a", URL: "rtsp://u:" + secret + "#x@h/x"}, "must be percent-encoded"},
		{store.CameraSpec{Name: "a", URL: "rtsp://u:12/" + secret + "@h/x"}, "must be percent-encoded"},
		{store.CameraSpec{Name: "a", URL: "rtsp://u:" + secret + "%zz@h/x"}, "not correctly percent-encoded"},
		{store.CameraSpec{Name: "a", URL: "rtsp://u:" + secret + "@h/x", Password: secret}, "not both"},
		{store.CameraSpec{Name: "a", URL: "rtsp://h/x", Password: secret}, "a password needs a username"},
		{store.CameraSpec{Name: "a", URL: "rtsp://h/x", AnalysisFPS: -1}, "analysis_fps must be in (0, 60]"},
		{store.CameraSpec{Name: "a", URL: "rtsp://h/x", Priority: 1.5}, "priority must be 0 to 1"},
		{store.CameraSpec{Name: "a", URL: "rtsp://h/x", AnalysisFPS: 61}, "analysis_fps must be in (0, 60]"},
		{store.CameraSpec{Name: "a", URL: "rtsp://h/" + strings.Repeat("x", 2048)}, "at most 2048 bytes"},
	} {
		_, err := s.AddCamera(ctx, "acme", c.spec)
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60q: %v, want ErrInvalid saying %q", c.spec.URL, err, c.want)
		}
		noSecret(t, "error", err)
	}
	// Every problem at once.
	_, err := s.AddCamera(ctx, "acme", store.CameraSpec{URL: "ftp://h/x", AnalysisFPS: 100})
	for _, want := range []string{"name", "url", "analysis_fps"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if list, _ := s.Cameras(ctx, "acme"); len(list) != 0 {
		t.Errorf("invalid cameras were stored: %v", list)
	}
}

// FuzzCameraURL feeds stream URLs with a password in them: whatever the rest of the URL, the
// password never shows in the redacted URL or in an error, and an accepted URL round-trips.
func FuzzCameraURL(f *testing.F) {
	f.Add("admin", "pw", "10.0.0.5:554/Streaming/101?profile=1")
	f.Add("admin", "12/34", "host")
	f.Add("a%2Fb", "p%40", "[::1]:8554/live")
	f.Add("u", "#x", "h:port/x")
	f.Add("", "", "@h/x")
	f.Fuzz(func(t *testing.T, user, pass, rest string) {
		const mark = "SECRETMARK"
		if strings.ContainsAny(user, ":%") || strings.Contains(user+rest, mark) {
			t.Skip("the marker would not be in the password alone")
		}
		c, err := store.CheckSpec(store.CameraSpec{Name: "cam", URL: "rtsp://" + user + ":" + pass + mark + "@" + rest})
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), mark) {
				t.Fatalf("error %q", err)
			}
			return
		}
		if strings.Contains(c.URL, mark) || strings.Contains(fmt.Sprint(c), mark) {
			t.Fatalf("redacted url %q shows the password", c.URL)
		}
		again, err := store.CheckSpec(store.CameraSpec{Name: "cam", URL: c.StreamURL()})
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("stream url %q does not round-trip: %v %+v, want %+v", c.StreamURL(), err, again, c)
		}
	})
}

func TestCameraNamesAndTenants(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	add := func(tenant, name string) (store.Camera, error) {
		return s.AddCamera(ctx, tenant, store.CameraSpec{Name: name, URL: "rtsp://u:" + secret + "@h/" + name, Enabled: true})
	}
	gate, err := add("acme", "gate")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := add("acme", "gate"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name: %v, want ErrConflict", err)
	}
	door, err := add("acme", "door")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateCamera(ctx, "acme", door.ID, store.CameraPatch{Name: ptr("gate")}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("rename onto a taken name: %v, want ErrConflict", err)
	}
	other, err := add("other", "gate")
	if err != nil {
		t.Fatalf("the same name in another tenant: %v", err)
	}

	if _, err := s.Camera(ctx, "other", gate.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's camera: %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateCamera(ctx, "other", gate.ID, store.CameraPatch{Enabled: ptr(false)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("updating another tenant's camera: %v, want ErrNotFound", err)
	}
	if err := s.DeleteCamera(ctx, "other", gate.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting another tenant's camera: %v, want ErrNotFound", err)
	}
	if list, _ := s.Cameras(ctx, "other"); len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("tenant other sees %v", list)
	}
	all, err := s.AllCameras(ctx)
	if err != nil || len(all) != 3 || all[0].Tenant != "acme" || all[2].Tenant != "other" {
		t.Errorf("all cameras %v: %v", all, err)
	}
}

// recv waits for a change signal.
func recv(t *testing.T, changes <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-changes:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no change signalled", what)
	}
}

// quiet checks that no change is signalled for a while.
func quiet(t *testing.T, changes <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changes:
		t.Errorf("%s: change signalled", what)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWatchCameras(t *testing.T) {
	s := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, err := s.WatchCameras(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, changes, "nothing changed")
	c, err := s.AddCamera(ctx, "acme", store.CameraSpec{Name: "gate", URL: "rtsp://h/x"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "add")
	if _, err := s.AddCamera(ctx, "acme", store.CameraSpec{Name: "gate", URL: "rtsp://h/x"}); err == nil {
		t.Fatal("duplicate added")
	}
	quiet(t, changes, "a failed add")
	if _, err := s.UpdateCamera(ctx, "acme", c.ID, store.CameraPatch{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "update")
	if err := s.DeleteCamera(ctx, "acme", c.ID); err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "delete")

	// Changes made while the connection is down are covered by the signal after reconnecting.
	tag, err := s.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("terminate the listener: %v, %d rows", err, tag.RowsAffected())
	}
	recv(t, changes, "reconnect")
	if _, err := s.AddCamera(ctx, "acme", store.CameraSpec{Name: "door", URL: "rtsp://h/y"}); err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "add after reconnecting")

	cancel()
	select {
	case _, ok := <-changes:
		for ok {
			_, ok = <-changes
		}
	case <-time.After(10 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestSyncConfigCameras(t *testing.T) {
	s := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	apiCam, err := s.AddCamera(ctx, "acme", store.CameraSpec{Name: "lobby", URL: "rtsp://h/lobby", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := s.WatchCameras(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	specs := []store.CameraSpec{
		{Name: "gate", URL: "rtsp://admin:" + secret + "@h/gate", AnalysisFPS: 7.3, Enabled: true},
		{Name: "yard", URL: "rtsp://h/yard", KeyframesOnly: true},
	}
	if err := s.SyncConfigCameras(ctx, "acme", specs); err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "first sync")
	list, _ := s.Cameras(ctx, "acme")
	if len(list) != 3 || list[0].Name != "gate" || list[0].Declared != store.DeclaredConfig || list[0].AnalysisFPS != 7.3 ||
		list[0].StreamURL() != "rtsp://admin:"+secret+"@h/gate" || list[2].Name != "yard" || !list[2].KeyframesOnly {
		t.Fatalf("after the first sync: %v", list)
	}
	gate := list[0]

	// The same list again changes nothing, so supervisors are not disturbed.
	if err := s.SyncConfigCameras(ctx, "acme", specs); err != nil {
		t.Fatal(err)
	}
	quiet(t, changes, "an unchanged sync")
	if got, _ := s.Camera(ctx, "acme", gate.ID); !reflect.DeepEqual(got, gate) {
		t.Errorf("unchanged sync rewrote %v", got)
	}

	// The API may not change what the configuration owns.
	if _, err := s.UpdateCamera(ctx, "acme", gate.ID, store.CameraPatch{Enabled: ptr(false)}); !errors.Is(err, store.ErrConfigured) {
		t.Errorf("update of a configured camera: %v, want ErrConfigured", err)
	}
	if err := s.DeleteCamera(ctx, "acme", gate.ID); !errors.Is(err, store.ErrConfigured) {
		t.Errorf("delete of a configured camera: %v, want ErrConfigured", err)
	}
	if _, err := s.AddCamera(ctx, "acme", store.CameraSpec{Name: "gate", URL: "rtsp://h/x"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("API camera named like a configured one: %v, want ErrConflict", err)
	}

	// gate changes, yard goes, lobby (from the API) is taken over by the configuration.
	specs = []store.CameraSpec{
		{Name: "gate", URL: "rtsp://h/gate2", Username: "admin", Password: secret, Enabled: true},
		{Name: "lobby", URL: "rtsp://h/lobby", Enabled: false},
	}
	if err := s.SyncConfigCameras(ctx, "acme", specs); err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "second sync")
	list, _ = s.Cameras(ctx, "acme")
	if len(list) != 2 || list[0].ID != gate.ID || list[0].URL != "rtsp://admin:xxxxx@h/gate2" || list[0].AnalysisFPS != 0 ||
		list[1].ID != apiCam.ID || list[1].Declared != store.DeclaredConfig || list[1].Enabled {
		t.Fatalf("after the second sync: %v", list)
	}

	// An API camera survives a sync that lists nothing, configured ones do not.
	if _, err := s.AddCamera(ctx, "acme", store.CameraSpec{Name: "dock", URL: "rtsp://h/dock"}); err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "add")
	if err := s.SyncConfigCameras(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	recv(t, changes, "empty sync")
	if list, _ = s.Cameras(ctx, "acme"); len(list) != 1 || list[0].Name != "dock" {
		t.Errorf("after an empty sync: %v", list)
	}

	// Bad specs are all reported, without credentials, and nothing is written.
	err = s.SyncConfigCameras(ctx, "acme", []store.CameraSpec{
		{Name: "a", URL: "rtsp://h/a"}, {Name: "a", URL: "rtsp://h/b"}, {Name: "c", URL: "http://u:" + secret + "@h/"},
	})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "cameras[1]") || !strings.Contains(err.Error(), "cameras[2]") {
		t.Errorf("bad specs: %v", err)
	}
	noSecret(t, "sync error", err)
	if list, _ = s.Cameras(ctx, "acme"); len(list) != 1 {
		t.Errorf("a failed sync wrote %v", list)
	}
}
