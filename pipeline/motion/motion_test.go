package motion_test

import (
	"image"
	"testing"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/motion"
)

// scene draws a textured static background with, optionally, a bright square at (x, y).
func scene(seq int64, w, h, x, y, side int) *ingest.Frame {
	f := &ingest.Frame{Seq: seq, Width: w, Height: h, BGR: make([]byte, w*h*3)}
	for py := range h {
		for px := range w {
			v := byte((px/16+py/16)%2*60 + 40)
			if side > 0 && px >= x && px < x+side && py >= y && py < y+side {
				v = 250
			}
			i := (py*w + px) * 3
			f.BGR[i], f.BGR[i+1], f.BGR[i+2] = v, v, v
		}
	}
	return f
}

func TestGate(t *testing.T) {
	const w, h = 640, 360
	g := motion.New(motion.Config{Warmup: 3})
	defer g.Close()
	var seq int64
	apply := func(f *ingest.Frame) motion.Result {
		t.Helper()
		res, err := g.Apply(f)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		return res
	}
	for range 3 {
		if res := apply(scene(seq, w, h, 0, 0, 0)); !res.Moving || len(res.Regions) != 0 {
			t.Fatalf("warm-up frame %d: %+v, want moving with no regions", seq, res)
		}
	}
	for range 20 {
		if res := apply(scene(seq, w, h, 0, 0, 0)); res.Moving {
			t.Fatalf("static frame %d reported motion: %+v", seq, res)
		}
	}
	// A square moving right: the gate must open, with a region around the square.
	for i := range 5 {
		x := 100 + 30*i
		res := apply(scene(seq, w, h, x, 150, 60))
		if !res.Moving {
			t.Fatalf("moving square at x=%d not seen", x)
		}
		sq := image.Rect(x, 150, x+60, 210)
		found := false
		for _, r := range res.Regions {
			if r.Overlaps(sq) {
				found = true
			}
		}
		if !found {
			t.Errorf("square at %v not in regions %v", sq, res.Regions)
		}
	}
}

func TestGateRejectsBadFrame(t *testing.T) {
	g := motion.New(motion.Config{})
	defer g.Close()
	if _, err := g.Apply(&ingest.Frame{Width: 4, Height: 4, BGR: make([]byte, 5)}); err == nil {
		t.Fatal("short frame accepted")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGateMask(t *testing.T) {
	const w, h = 640, 360
	// The left half of the frame is masked, as if a tree swayed there.
	left := configs.Polygon{{X: 0, Y: 0}, {X: 0.5, Y: 0}, {X: 0.5, Y: 1}, {X: 0, Y: 1}}
	if err := configs.ValidateMask([]configs.Polygon{left}); err != nil {
		t.Fatal(err)
	}
	g := motion.New(motion.Config{Warmup: 3, Mask: []configs.Polygon{left}})
	defer g.Close()
	var seq int64
	for range 10 {
		if _, err := g.Apply(scene(seq, w, h, 0, 0, 0)); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	for i := range 5 {
		res, err := g.Apply(scene(seq, w, h, 40+30*i, 150, 60)) // well inside the left half
		if err != nil {
			t.Fatal(err)
		}
		seq++
		if res.Moving {
			t.Fatalf("movement inside the mask opened the gate: %+v", res)
		}
	}
	opened := false
	for i := range 5 {
		res, err := g.Apply(scene(seq, w, h, 400+30*i, 150, 60)) // the right half
		if err != nil {
			t.Fatal(err)
		}
		seq++
		opened = opened || res.Moving
	}
	if !opened {
		t.Error("movement outside the mask did not open the gate")
	}
	for _, bad := range [][]configs.Polygon{{{{X: 0, Y: 0}, {X: 1, Y: 1}}}, {{{X: 0, Y: 0}, {X: 1.5, Y: 0}, {X: 0, Y: 1}}}} {
		if configs.ValidateMask(bad) == nil {
			t.Errorf("mask %v accepted", bad)
		}
	}
}

// TestLearningRate checks that the configured rate reaches MOG2: a parked object is absorbed
// into the background within a few frames at a high rate, and stays foreground at a low one.
func TestLearningRate(t *testing.T) {
	const w, h = 320, 180
	parkedFor := func(rate float64) int {
		g := motion.New(motion.Config{Warmup: 3, History: 500, LearningRate: rate})
		defer g.Close()
		var seq int64
		for range 10 {
			if _, err := g.Apply(scene(seq, w, h, 0, 0, 0)); err != nil {
				t.Fatal(err)
			}
			seq++
		}
		for n := range 60 {
			res, err := g.Apply(scene(seq, w, h, 100, 60, 40))
			if err != nil {
				t.Fatal(err)
			}
			seq++
			if !res.Moving {
				return n
			}
		}
		return 60
	}
	fast, slow := parkedFor(0.5), parkedFor(0.001)
	if fast > 5 {
		t.Errorf("at learning rate 0.5 a parked object still moved after %d frames", fast)
	}
	if slow < 60 {
		t.Errorf("at learning rate 0.001 a parked object became background after %d frames", slow)
	}
}
