package jobs_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/jobs/jobstest"
	"github.com/vigilcam/vigil/sink/search"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// system is the whole indexing path with real parts and one worker, wired as `vigil index` wires
// them.
type system struct{ jobstest.System }

func newSystem(t *testing.T) system {
	t.Helper()
	s := jobstest.Start(t)
	s.StartWorker(t, 0)
	return system{s}
}

func (s system) index(t *testing.T, path string, force bool) jobs.Outcome {
	t.Helper()
	out := s.Index(t, path, jobs.Options{Force: force})
	if out.Video.Status != store.StatusReady {
		t.Fatalf("index %s: status %q (%s)", path, out.Video.Status, out.Video.Error)
	}
	return out
}

func (s system) search(t *testing.T, text string) []search.Result {
	t.Helper()
	resp, err := search.New(s.Store.Pool(), nil, search.Config{}, slog.Default()).Search(context.Background(), search.Query{Tenant: "default", Text: text, TopK: 20})
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
	if n, err := s.Store.CountVideoMoments(context.Background(), first.Video.ID); err != nil || n != first.Moments {
		t.Errorf("after indexing twice the video has %d moments (%v), want %d", n, err, first.Moments)
	}
	if v, err := s.Indexer.Submit(context.Background(), "default", cars, jobs.Options{}); err != nil ||
		v.ID != first.Video.ID || v.Status != store.StatusReady {
		t.Errorf("without Force a ready file should be returned as it is, not queued: %+v %v", v, err)
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
		v, err := s.Indexer.Submit(context.Background(), "default", c.path, jobs.Options{Force: true})
		if err != nil {
			t.Fatalf("%s: submit: %v", c.name, err)
		}
		out := s.Wait(t, v.ID)
		if out.Video.Status != store.StatusFailed || out.Video.Error == "" {
			t.Errorf("%s: %+v, want failed with a reason", c.name, out.Video)
			continue
		}
		if c.want != "" && !strings.Contains(out.Video.Error, c.want) {
			t.Errorf("%s: reason %q does not say %q", c.name, out.Video.Error, c.want)
		}
		t.Logf("%s: %s", c.name, out.Video.Error)
	}
	// The worker keeps working after bad input.
	s.index(t, sharedtest.Clip(t, "dog.mp4"), true)
}
