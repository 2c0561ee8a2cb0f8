package jobs_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/rtsp/rtsptest"
	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/jobs/jobstest"
	"github.com/vigilcam/vigil/sink/search"
	"github.com/vigilcam/vigil/sink/store"
)

// eventually polls cond every 100 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCamerasFollowTheRegistry watches a real RTSP camera (VLC serving people walking up to a
// table; a keyframe every second, so a late joiner starts quickly) as it is added, disabled,
// enabled, changed and removed in the registry, and finds its moments by searching.
func TestCamerasFollowTheRegistry(t *testing.T) {
	sys := jobstest.Start(t)
	url := rtsptest.VLC(t, "one-by-one-person-detection.mp4")
	log := slog.New(slog.DiscardHandler)
	cams := jobs.NewCameras(jobs.CamerasConfig{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second},
		sys.Store, sys.Pipeline, ingest.NewCameraMetrics(prometheus.NewRegistry()), log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cams.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	bg := context.Background()
	gate, err := sys.Store.AddCamera(bg, "default", store.CameraSpec{Name: "gate", URL: url, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := sys.Store.AddCamera(bg, "default", store.CameraSpec{
		Name: "dead", URL: fmt.Sprintf("rtsp://admin:s3cret@127.0.0.1:%d/cam", rtsptest.FreePort(t)), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	// 10 s of the clip: its first person walks up to the table at about 3 s.
	eventually(t, 40*time.Second, "camera gate did not stream", func() bool {
		st, ok := cams.CameraState(gate.ID)
		return ok && st.Phase == ingest.Streaming && st.FramesOut >= 50
	})
	eventually(t, 10*time.Second, "camera dead is not backing off", func() bool {
		st, ok := cams.CameraState(dead.ID)
		return ok && st.Reconnects >= 2 && strings.Contains(st.LastError, "connection refused")
	})
	st, _ := cams.CameraState(dead.ID)
	if strings.Contains(st.LastError, "s3cret") {
		t.Errorf("camera state shows the password: %q", st.LastError)
	}
	live, _ := cams.CameraState(gate.ID)
	t.Logf("gate: %+v\ndead: %+v", live, st)

	// Disabled: the supervisor stops, the pipeline drains and the open moment is published.
	off := false
	if _, err := sys.Store.UpdateCamera(bg, "default", gate.ID, store.CameraPatch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "camera gate still watched after it was disabled", func() bool {
		_, ok := cams.CameraState(gate.ID)
		return !ok
	})
	eventually(t, 30*time.Second, "no moment with a person from camera gate", func() bool {
		resp, err := search.New(sys.Store.Pool(), nil, search.Config{}, slog.Default()).Search(bg, search.Query{Tenant: "default", Text: "person", TopK: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Results {
			if r.VideoID == gate.ID && r.Objects["person"] > 0 && r.Source == "gate" {
				t.Logf("moment from camera gate: %.1f-%.1f s %q %v", r.StartS, r.EndS, r.Caption, r.Objects)
				return true
			}
		}
		return false
	})

	// Enabled again, then removed.
	on := true
	if _, err := sys.Store.UpdateCamera(bg, "default", gate.ID, store.CameraPatch{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	var before ingest.State
	eventually(t, 30*time.Second, "camera gate not streaming again after it was enabled", func() bool {
		st, ok := cams.CameraState(gate.ID)
		before = st
		return ok && st.Phase == ingest.Streaming && st.FramesOut >= 5
	})
	// Changed: a new supervisor, whose counters start again, at the new rate.
	fps := 2.0
	if _, err := sys.Store.UpdateCamera(bg, "default", gate.ID, store.CameraPatch{AnalysisFPS: &fps}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "camera gate not restarted after its rate changed", func() bool {
		st, ok := cams.CameraState(gate.ID)
		return ok && st.FramesIn < before.FramesIn
	})
	for _, id := range []int64{gate.ID, dead.ID} {
		if err := sys.Store.DeleteCamera(bg, "default", id); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "cameras still watched after they were removed", func() bool {
		_, a := cams.CameraState(gate.ID)
		_, b := cams.CameraState(dead.ID)
		return !a && !b
	})
}
