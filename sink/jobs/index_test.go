package jobs_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/motion"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
	"github.com/vigilcam/vigil/pipeline/track"
	"github.com/vigilcam/vigil/sink"
	"github.com/vigilcam/vigil/sink/bus/bustest"
	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/search"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// system is the whole indexing path with real parts: PostgreSQL, JetStream, ONNX Runtime and the
// shared YOLOv8n, wired as `vigil index` wires them, with the shipped defaults.
type system struct {
	ix    *jobs.Indexer
	store *store.Store
}

func newSystem(t *testing.T) system {
	t.Helper()
	onnxtest.Init(t)
	model := sharedtest.YOLO(t)
	cfg := configs.Default()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.Default()
	}
	st := storetest.Open(t)
	b := bustest.Open(t)
	det, err := detect.New(detect.Config{
		Model: model, Sessions: 2, Threads: 1,
		Confidence: float32(cfg.Pipeline.Detect.Confidence), IoU: float32(cfg.Pipeline.Detect.IoU),
		Classes: cfg.Pipeline.Detect.Classes,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { det.Close() })
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	consumer, err := b.Moments(ctx, "sink", 30*time.Second, 1024)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sink.New(sink.Config{}, consumer, st, reg, log).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
	})
	p := cfg.Pipeline
	pipe := pipeline.New(pipeline.Config{
		QueueSize: p.QueueSize, Gate: true,
		Motion: motion.Config{Width: p.Motion.Width, History: p.Motion.History,
			VarThreshold: p.Motion.VarThreshold, MinArea: p.Motion.MinArea, Warmup: p.Motion.Warmup},
		Moments: track.Config{IdleGap: p.Moments.IdleGap, MaxLength: p.Moments.MaxLength},
	}, det, b, pipeline.NewMetrics(reg), log)
	ix := jobs.NewIndexer(jobs.Config{AnalysisFPS: p.AnalysisFPS, CommitTimeout: 30 * time.Second}, st, pipe, log)
	return system{ix: ix, store: st}
}

func (s system) index(t *testing.T, path string, force bool) jobs.Outcome {
	t.Helper()
	out, err := s.ix.Index(context.Background(), "default", path, jobs.Options{Force: force})
	if err != nil {
		t.Fatalf("index %s: %v", path, err)
	}
	if out.Video.Status != store.StatusReady {
		t.Fatalf("index %s: status %q", path, out.Video.Status)
	}
	return out
}

func (s system) search(t *testing.T, text string) []search.Result {
	t.Helper()
	resp, err := search.New(s.store.Pool()).Search(context.Background(), search.Query{Tenant: "default", Text: text, TopK: 20})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Results
}

func TestIndexAndSearchRealClips(t *testing.T) {
	s := newSystem(t)
	cars := sharedtest.Clip(t, "car-detection.mp4")
	first := s.index(t, cars, true)

	// The clip's car passages, from the media manifest; the rest of it is an empty car park.
	passages := [][2]float64{{4, 8}, {14, 18}, {25, 27}}
	carFree := [][2]float64{{0, 3.5}, {9, 13.5}, {19, 24.5}, {28, 31}}
	overlaps := func(r search.Result, span [2]float64) bool { return r.StartS <= span[1] && r.EndS >= span[0] }
	results := s.search(t, "car")
	hit := map[int]bool{}
	wrong := 0
	for _, r := range results {
		if r.VideoID != first.Video.ID {
			t.Errorf("result from another video: %+v", r)
		}
		inside := false
		for i, p := range passages {
			if overlaps(r, p) {
				hit[i] = true
				inside = true
			}
		}
		for _, free := range carFree {
			if !inside && r.StartS >= free[0] && r.EndS <= free[1] {
				wrong++
			}
		}
		t.Logf("car: %.1f-%.1f s %q score %.3f", r.StartS, r.EndS, r.Caption, r.Score)
	}
	if len(hit) < 2 {
		t.Errorf("search \"car\" overlaps %d of the 3 car passages, want at least 2", len(hit))
	}
	if wrong > 1 {
		t.Errorf("search \"car\" returned %d moments lying in car-free stretches, want at most 1", wrong)
	}

	// Indexing the same file again changes nothing: same video row, same moments, no duplicates.
	again := s.index(t, cars, true)
	if again.Video.ID != first.Video.ID || again.Moments != first.Moments {
		t.Errorf("second indexing: video %d with %d moments, first was video %d with %d",
			again.Video.ID, again.Moments, first.Video.ID, first.Moments)
	}
	if n, err := s.store.CountVideoMoments(context.Background(), first.Video.ID); err != nil || n != first.Moments {
		t.Errorf("after indexing twice the video has %d moments (%v), want %d", n, err, first.Moments)
	}
	if skipped, err := s.ix.Index(context.Background(), "default", cars, jobs.Options{}); err != nil || !skipped.Skipped {
		t.Errorf("without Force a ready file should be skipped: %+v %v", skipped, err)
	}

	vtest := s.index(t, sharedtest.Clip(t, "vtest.avi"), true)
	found := 0
	for _, r := range s.search(t, "person") {
		if r.VideoID == vtest.Video.ID {
			found++
			if r.Objects["person"] == 0 {
				t.Errorf("vtest moment without a person in its objects: %+v", r)
			}
		}
	}
	if found == 0 {
		t.Error("search \"person\" returned nothing from vtest.avi")
	}
}

func TestIndexBadInputFails(t *testing.T) {
	s := newSystem(t)
	dir := t.TempDir()
	cars, err := os.ReadFile(sharedtest.Clip(t, "cars.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"missing file", dir + "/no-such-clip.mp4", "no such file"},
		{"text file", write("notes.mp4", []byte("these are not the frames you are looking for\n")), "not a video"},
		{"truncated video", write("truncated.mp4", cars[:len(cars)/2]), ""},
	} {
		out, err := s.ix.Index(context.Background(), "default", c.path, jobs.Options{Force: true})
		if err == nil {
			t.Errorf("%s: indexed without error", c.name)
			continue
		}
		if c.want != "" && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.want)
		}
		v, verr := s.store.Video(context.Background(), "default", out.Video.ID)
		if verr != nil || v.Status != store.StatusFailed || v.Error != err.Error() {
			t.Errorf("%s: row %+v (%v), want failed with %q", c.name, v, verr, err)
		}
		t.Logf("%s: %v", c.name, err)
	}
	// The indexer keeps working after bad input.
	s.index(t, sharedtest.Clip(t, "dog.mp4"), true)
}
