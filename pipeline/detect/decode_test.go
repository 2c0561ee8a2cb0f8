package detect

import (
	"math"
	"testing"
)

func TestLetterbox(t *testing.T) {
	for _, c := range []struct {
		w, h           int
		scale          float32
		sw, sh, px, py int
	}{
		{768, 576, 640.0 / 768, 640, 480, 0, 80},
		{768, 432, 640.0 / 768, 640, 360, 0, 140},
		{360, 640, 1, 360, 640, 140, 0},
		{1280, 720, 0.5, 640, 360, 0, 140},
		{640, 640, 1, 640, 640, 0, 0},
	} {
		lb := newLetterbox(c.w, c.h, 640)
		if math.Abs(float64(lb.scale-c.scale)) > 1e-6 || lb.w != c.sw || lb.h != c.sh || lb.padX != c.px || lb.padY != c.py {
			t.Errorf("%dx%d: got %+v", c.w, c.h, lb)
		}
		// The input's corners of the picture map back to the frame's corners.
		x, y := lb.toFrame(float32(lb.padX), float32(lb.padY))
		x2, y2 := lb.toFrame(float32(lb.padX+lb.w), float32(lb.padY+lb.h))
		if abs(x) > 0.01 || abs(y) > 0.01 || abs(x2-float32(c.w)) > 1 || abs(y2-float32(c.h)) > 1 {
			t.Errorf("%dx%d: corners map to (%g,%g)-(%g,%g)", c.w, c.h, x, y, x2, y2)
		}
	}
}

func abs(v float32) float32 { return float32(math.Abs(float64(v))) }

// output builds a model output with the given boxes (input space) and one score per box.
func output(anchors, classes int, boxes []struct {
	cx, cy, w, h float32
	class        int
	score        float32
}) []float32 {
	out := make([]float32, (4+classes)*anchors)
	for i, b := range boxes {
		out[i], out[anchors+i], out[2*anchors+i], out[3*anchors+i] = b.cx, b.cy, b.w, b.h
		out[(4+b.class)*anchors+i] = b.score
		// A weaker score for another class on the same anchor must not win.
		out[(4+(b.class+1)%classes)*anchors+i] = b.score / 2
	}
	return out
}

func TestDecodeAndNMS(t *testing.T) {
	classes := []string{"person", "car", "dog"}
	boxes := []struct {
		cx, cy, w, h float32
		class        int
		score        float32
	}{
		{100, 200, 40, 80, 0, 0.9},  // person
		{102, 201, 40, 80, 0, 0.8},  // same person, suppressed
		{101, 200, 40, 80, 1, 0.7},  // a car in the same place: another class, kept
		{400, 300, 100, 50, 1, 0.6}, // car
		{500, 500, 10, 10, 2, 0.2},  // below confidence
		{630, 150, 40, 40, 2, 0.5},  // dog straddling the right and top edges, clamped
		{300, 10, 40, 40, 2, 0.9},   // only in the padding: no area in the frame, dropped
	}
	anchors := 9
	// A 1280x720 frame: scale 0.5, 140 px of padding above and below.
	lb := newLetterbox(1280, 720, 640)
	got := decode(output(anchors, len(classes), boxes), anchors, classes, []float32{0.35, 0.35, 0.35}, lb, 0.5)
	want := []Detection{
		{Class: "person", ClassID: 0, Score: 0.9, X1: 160, Y1: 40, X2: 240, Y2: 200},
		{Class: "car", ClassID: 1, Score: 0.7, X1: 162, Y1: 40, X2: 242, Y2: 200},
		{Class: "car", ClassID: 1, Score: 0.6, X1: 700, Y1: 270, X2: 900, Y2: 370},
		{Class: "dog", ClassID: 2, Score: 0.5, X1: 1220, Y1: 0, X2: 1280, Y2: 60},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d detections %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Class != w.Class || g.Score != w.Score || abs(g.X1-w.X1) > 0.01 || abs(g.Y1-w.Y1) > 0.01 ||
			abs(g.X2-w.X2) > 0.01 || abs(g.Y2-w.Y2) > 0.01 {
			t.Errorf("detection %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestParseNames(t *testing.T) {
	got := parseNames(`{0: 'person', 1: 'bicycle', 2: "traffic light"}`)
	if len(got) != 3 || got[0] != "person" || got[2] != "traffic light" {
		t.Errorf("got %q", got)
	}
	if got := parseNames(`{0: 'person', 2: 'car'}`); got != nil {
		t.Errorf("names with a gap: got %q, want nil", got)
	}
	if got := parseNames(""); got != nil {
		t.Errorf("no names: got %q", got)
	}
}

func TestDecodeKeepsAllowedClassesOnly(t *testing.T) {
	classes := []string{"person", "cell phone"}
	boxes := []struct {
		cx, cy, w, h float32
		class        int
		score        float32
	}{
		{100, 300, 40, 80, 0, 0.6}, // person, and a weaker cell phone on the same anchor
		{300, 300, 40, 40, 1, 0.9}, // cell phone, not allowed; its person score (0.45) is below 0.5
	}
	got := decode(output(2, 2, boxes), 2, classes, []float32{0.5, 2}, newLetterbox(640, 640, 640), 0.5)
	if len(got) != 1 || got[0].Class != "person" || got[0].Score != 0.6 {
		t.Errorf("got %+v, want the person only", got)
	}
}

func TestDecodePerClassConfidence(t *testing.T) {
	classes := []string{"person", "bicycle"}
	boxes := []struct {
		cx, cy, w, h float32
		class        int
		score        float32
	}{
		{100, 300, 40, 80, 0, 0.5},  // a person below its 0.6 (and a 0.25 bicycle below its 0.26)
		{300, 300, 60, 40, 1, 0.3},  // a bicycle above its 0.26
		{500, 300, 60, 40, 1, 0.2},  // a bicycle below it
		{200, 100, 40, 80, 0, 0.65}, // a person above its 0.6
	}
	got := decode(output(4, 2, boxes), 4, classes, []float32{0.6, 0.26}, newLetterbox(640, 640, 640), 0.5)
	if len(got) != 2 || got[0].Class != "person" || got[0].Score != 0.65 || got[1].Class != "bicycle" || got[1].Score != 0.3 {
		t.Errorf("got %+v, want the 0.65 person and the 0.3 bicycle", got)
	}
}
