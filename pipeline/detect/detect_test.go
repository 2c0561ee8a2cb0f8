package detect_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
)

func newDetector(t testing.TB, sessions int) *detect.Detector {
	t.Helper()
	onnxtest.Init(t)
	d, err := detect.New(detect.Config{Model: sharedtest.YOLO(t), Sessions: sessions}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDetectRealModel(t *testing.T) {
	d := newDetector(t, 1)
	if got := d.Classes(); len(got) != 80 || got[0] != "person" || got[2] != "car" {
		t.Fatalf("class names from metadata: %q", got)
	}
	for _, c := range []struct {
		clip, at string
		w, h     int
		class    string
		atLeast  int
	}{
		// Counts from the shared media manifest: 6-7 pedestrians at 10 s, 7 cars at 2 s, a dog.
		{"vtest.avi", "10", 768, 576, "person", 4},
		{"cars.mp4", "2", 1280, 720, "car", 4},
		{"dog.mp4", "0.5", 640, 360, "dog", 1},
	} {
		f := sharedtest.FrameAt(t, sharedtest.Clip(t, c.clip), c.at, c.w, c.h)
		dets, err := d.Detect(context.Background(), f)
		if err != nil {
			t.Fatalf("%s: %v", c.clip, err)
		}
		n := 0
		for _, det := range dets {
			if det.Class == c.class {
				n++
			}
			if det.X1 < 0 || det.Y1 < 0 || det.X2 > float32(c.w) || det.Y2 > float32(c.h) || det.X2 <= det.X1 || det.Y2 <= det.Y1 {
				t.Errorf("%s: box outside the frame: %+v", c.clip, det)
			}
		}
		if n < c.atLeast {
			t.Errorf("%s @%ss: %d %s, want at least %d (all: %+v)", c.clip, c.at, n, c.class, c.atLeast, dets)
		}
	}
}

func TestDetectConcurrentSessionsAgree(t *testing.T) {
	d := newDetector(t, 2)
	f := sharedtest.FrameAt(t, sharedtest.Clip(t, "vtest.avi"), "25", 768, 576)
	want, err := d.Detect(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan []detect.Detection, 6)
	for range cap(results) {
		go func() {
			got, err := d.Detect(context.Background(), f)
			if err != nil {
				t.Error(err)
			}
			results <- got
		}()
	}
	for range cap(results) {
		if got := <-results; len(got) != len(want) {
			t.Errorf("concurrent run found %d objects, serial run %d", len(got), len(want))
		}
	}
}

func TestDetectRejectsBadFrame(t *testing.T) {
	d := newDetector(t, 1)
	_, err := d.Detect(context.Background(), &ingest.Frame{Width: 10, Height: 10, BGR: make([]byte, 7)})
	if err == nil {
		t.Fatal("a frame with too few bytes was accepted")
	}
}
