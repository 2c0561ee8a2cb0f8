package api_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/track"
	"github.com/vigilcam/vigil/sink/store"
)

// tracked runs a person standing in a 960×540 picture through a segmenter and returns the
// moment of its closed segment, thumbnail included.
func tracked(t *testing.T, v store.Video) pipeline.Moment {
	t.Helper()
	w, h := 960, 540
	bgr := make([]byte, w*h*3)
	for i := range bgr {
		bgr[i] = byte(i / 3 % w / 4)
	}
	d := detect.Detection{Class: "person", Score: 0.8, X1: 300, Y1: 100, X2: 420, Y2: 500}
	seg := track.NewSegmenter(track.Config{})
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		pts := time.Duration(i) * 200 * time.Millisecond
		seg.Push(&ingest.Frame{Width: w, Height: h, BGR: bgr, PTS: pts, Wall: t0.Add(pts)}, []detect.Detection{d})
	}
	events := seg.Finish()
	if len(events) != 1 || events[0].Segment.Thumbnail == nil || events[0].Err != nil {
		t.Fatalf("segmenter: %+v", events)
	}
	s := events[0].Segment
	return pipeline.Moment{
		ID: pipeline.MomentID(s.StartWall, []byte("api"), s.Start), Tenant: v.Tenant, VideoID: v.ID,
		Source: v.Name, StartS: s.Start.Seconds(), EndS: s.End.Seconds(), StartedAt: s.StartWall,
		EndedAt: s.EndWall, Objects: s.Objects, Tracks: s.Tracks, Caption: track.Caption(s.Objects),
		BestScore: s.BestScore, Thumbnail: s.Thumbnail.JPEG, Boxes: s.Thumbnail.Boxes,
	}
}

func TestMomentAndThumbnail(t *testing.T) {
	srv, st := newServer(t)
	ctx := context.Background()
	v, err := st.QueueUpload(ctx, "default", "/clips/gate.mp4", "gate.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	m := tracked(t, v)
	bare := pipeline.Moment{
		ID: pipeline.MomentID(m.StartedAt.Add(time.Minute), []byte("api"), time.Minute), Tenant: "default",
		VideoID: v.ID, Source: v.Name, StartS: 60, EndS: 62, StartedAt: m.StartedAt.Add(time.Minute),
		EndedAt: m.StartedAt.Add(62 * time.Second), Objects: map[string]int{"car": 1}, Caption: "a car",
	}
	if _, err := st.WriteMoments(ctx, []pipeline.Moment{m, bare}); err != nil {
		t.Fatal(err)
	}

	var got struct {
		MomentID        string `json:"moment_id"`
		Source          string
		Caption         string
		Objects, Tracks map[string]int
		Boxes           []track.Box
		ThumbnailURL    string `json:"thumbnail_url"`
		ThumbnailWidth  int    `json:"thumbnail_width"`
		ThumbnailHeight int    `json:"thumbnail_height"`
	}
	if code := get(t, srv, "/api/v1/moments/"+m.ID, &got); code != http.StatusOK {
		t.Fatalf("moment: %d", code)
	}
	if got.MomentID != m.ID || got.Source != "gate.mp4" || got.Caption != "a person" || got.Tracks["person"] != 1 ||
		got.ThumbnailWidth != 640 || got.ThumbnailHeight != 360 || len(got.Boxes) != 1 {
		t.Fatalf("moment: %+v", got)
	}
	if want := "/api/v1/moments/" + m.ID + "/thumbnail.jpg"; got.ThumbnailURL != want {
		t.Fatalf("thumbnail_url %q, want %q", got.ThumbnailURL, want)
	}

	resp, err := http.Get(srv.URL + got.ThumbnailURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("thumbnail: %d %v", resp.StatusCode, resp.Header)
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b := got.Boxes[0]
	if img.Bounds().Dx() != got.ThumbnailWidth || img.Bounds().Dy() != got.ThumbnailHeight ||
		b.X1 < 0 || b.Y1 < 0 || b.X2 > got.ThumbnailWidth || b.Y2 > got.ThumbnailHeight || b.X1 >= b.X2 || b.Y1 >= b.Y2 {
		t.Errorf("thumbnail %v with box %+v", img.Bounds(), b)
	}
	// A browser revalidating what it has gets no body.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+got.ThumbnailURL, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", again.StatusCode)
	}

	var noThumb map[string]any
	if code := get(t, srv, "/api/v1/moments/"+bare.ID, &noThumb); code != http.StatusOK || noThumb["thumbnail_url"] != nil {
		t.Errorf("moment without a thumbnail: %d %v", code, noThumb)
	}
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/moments/" + bare.ID + "/thumbnail.jpg", 404, "not_found"},
		{"/api/v1/moments/0190a5d0-0000-7000-8000-000000000000", 404, "not_found"},
		{"/api/v1/moments/42", 400, "invalid_id"},
		{"/api/v1/moments/not-a-uuid/thumbnail.jpg", 400, "invalid_id"},
		{"/api/v1/moments/" + m.ID + "/thumbnail.jpg?tenant=..%2Fx", 400, "tenant_parameter"},
	} {
		var body map[string]any
		if code := get(t, srv, c.path, &body); code != c.code || body["code"] != c.want {
			t.Errorf("GET %s: %d %v, want %d %s", c.path, code, body, c.code, c.want)
		}
	}
}
