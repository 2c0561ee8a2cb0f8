package track_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/track"
)

func TestCaption(t *testing.T) {
	for _, c := range []struct {
		objects map[string]int
		want    string
	}{
		{nil, ""},
		{map[string]int{"car": 1}, "a car"},
		{map[string]int{"person": 2, "car": 1}, "2 people and a car"},
		{map[string]int{"umbrella": 1, "bus": 3, "person": 1}, "3 buses, a person and an umbrella"},
		{map[string]int{"knife": 2, "wine glass": 2, "bench": 2, "dog": 0}, "2 benches, 2 knives and 2 wine glasses"},
		{map[string]int{"sheep": 4, "cell phone": 2}, "4 sheep and 2 cell phones"},
		{map[string]int{"skis": 1, "sheep": 1}, "a sheep and a pair of skis"},
	} {
		if got := track.Caption(c.objects); got != c.want {
			t.Errorf("Caption(%v) = %q, want %q", c.objects, got, c.want)
		}
	}
}

// dets returns one detection per class, each at its own still place: the i-th at x = 100*i.
func dets(classes ...string) []detect.Detection {
	var out []detect.Detection
	for i, c := range classes {
		x := float32(100 * i)
		out = append(out, detect.Detection{Class: c, Score: 0.5 + float32(i)/100, X1: x, Y1: 0, X2: x + 50, Y2: 100})
	}
	return out
}

var t0 = time.Unix(1_700_000_000, 0)

// stamped is an event with the stream time of the frame that caused it (-1 for Finish).
type stamped struct {
	at time.Duration
	track.Event
}

// frames feeds a 5 fps stream from 0 to end, with detections where at says so, then finishes it.
func frames(s *track.Segmenter, end time.Duration, at func(time.Duration) []detect.Detection) []stamped {
	var out []stamped
	for pts := time.Duration(0); pts <= end; pts += 200 * time.Millisecond {
		for _, e := range s.Push(&ingest.Frame{PTS: pts, Wall: t0.Add(pts)}, at(pts)) {
			out = append(out, stamped{pts, e})
		}
	}
	for _, e := range s.Finish() {
		out = append(out, stamped{-1, e})
	}
	return out
}

func TestSegmenterSpans(t *testing.T) {
	sec := time.Second
	cfg := track.Config{IdleGap: 3 * sec, MaxLength: 20 * sec, Tracker: hits3}
	for _, c := range []struct {
		name string
		at   func(time.Duration) []detect.Detection
		end  time.Duration
		want [][2]time.Duration // start, end of each segment
	}{
		{"nothing", func(time.Duration) []detect.Detection { return nil }, 10 * sec, nil},
		{"a detection in two frames is no object", func(p time.Duration) []detect.Detection {
			if p == 5*sec || p == 5200*time.Millisecond {
				return dets("person")
			}
			return nil
		}, 10 * sec, nil},
		{"two passages apart", func(p time.Duration) []detect.Detection {
			if (p >= 4*sec && p <= 8*sec) || (p >= 14*sec && p <= 18*sec) {
				return dets("car")
			}
			return nil
		}, 30 * sec, [][2]time.Duration{{4 * sec, 8 * sec}, {14 * sec, 18 * sec}}},
		{"a gap shorter than idle joins", func(p time.Duration) []detect.Detection {
			if p >= 1*sec && p <= 3*sec || p >= 5*sec && p <= 6*sec {
				return dets("person")
			}
			return nil
		}, 12 * sec, [][2]time.Duration{{1 * sec, 6 * sec}}},
		{"long activity is cut at max length", func(p time.Duration) []detect.Detection {
			return dets("person")
		}, 45 * sec, [][2]time.Duration{{0, 19800 * time.Millisecond}, {20 * sec, 39800 * time.Millisecond}, {40 * sec, 45 * sec}}},
		{"still open at the end is finished", func(p time.Duration) []detect.Detection {
			if p >= 8*sec {
				return dets("dog")
			}
			return nil
		}, 9 * sec, [][2]time.Duration{{8 * sec, 9 * sec}}},
	} {
		var got []track.Segment
		for _, e := range frames(track.NewSegmenter(cfg), c.end, c.at) {
			if e.Kind == track.Closed {
				got = append(got, e.Segment)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %d segments %+v, want %d", c.name, len(got), got, len(c.want))
			continue
		}
		for i, w := range c.want {
			g := got[i]
			if g.Start != w[0] || g.End != w[1] || !g.StartWall.Equal(t0.Add(w[0])) || !g.EndWall.Equal(t0.Add(w[1])) {
				t.Errorf("%s: segment %d spans %v-%v (%v-%v), want %v-%v", c.name, i, g.Start, g.End, g.StartWall, g.EndWall, w[0], w[1])
			}
		}
	}
}

func TestSegmenterEvents(t *testing.T) {
	sec, ms := time.Second, time.Millisecond
	type ev struct {
		kind       track.EventKind
		at         time.Duration
		start, end time.Duration
	}
	for _, c := range []struct {
		name string
		cfg  track.Config
		at   func(time.Duration) []detect.Detection
		end  time.Duration
		want []ev
	}{
		{
			// Opened on the third frame (the track is confirmed), updated every 2 s of stream time
			// while the car is seen, closed once 3 s passed without it.
			"open, update, close",
			track.Config{IdleGap: 3 * sec, MaxLength: 60 * sec, UpdateEvery: 2 * sec, Tracker: hits3},
			func(p time.Duration) []detect.Detection {
				if p >= sec && p <= 10*sec {
					return dets("car")
				}
				return nil
			},
			20 * sec,
			[]ev{
				{track.Opened, 1400 * ms, sec, 1400 * ms},
				{track.Updated, 3400 * ms, sec, 3400 * ms},
				{track.Updated, 5400 * ms, sec, 5400 * ms},
				{track.Updated, 7400 * ms, sec, 7400 * ms},
				{track.Updated, 9400 * ms, sec, 9400 * ms},
				{track.Closed, 13 * sec, sec, 10 * sec},
			},
		},
		{
			// At MaxLength the segment closes and the next opens on the same frame.
			"split at max length",
			track.Config{IdleGap: 3 * sec, MaxLength: 10 * sec, UpdateEvery: time.Hour, Tracker: hits3},
			func(time.Duration) []detect.Detection { return dets("person") },
			25 * sec,
			[]ev{
				{track.Opened, 400 * ms, 0, 400 * ms},
				{track.Closed, 10 * sec, 0, 9800 * ms},
				{track.Opened, 10 * sec, 10 * sec, 10 * sec},
				{track.Closed, 20 * sec, 10 * sec, 19800 * ms},
				{track.Opened, 20 * sec, 20 * sec, 20 * sec},
				{track.Closed, -1, 20 * sec, 25 * sec},
			},
		},
	} {
		var got []ev
		for _, e := range frames(track.NewSegmenter(c.cfg), c.end, c.at) {
			got = append(got, ev{e.Kind, e.at, e.Segment.Start, e.Segment.End})
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
		}
	}
}

func TestSegmentObjectsTracksAndBest(t *testing.T) {
	s := track.NewSegmenter(track.Config{Tracker: hits3})
	box := func(class string, x, score float32) detect.Detection {
		return detect.Detection{Class: class, Score: score, X1: x, Y1: 10, X2: x + 40, Y2: 90}
	}
	var last track.Segment
	push := func(pts time.Duration, ds ...detect.Detection) {
		for _, e := range s.Push(&ingest.Frame{PTS: pts, Wall: t0.Add(pts)}, ds) {
			last = e.Segment
		}
	}
	step := 200 * time.Millisecond
	// Two people and a car for a second; then the first person leaves and a third comes, the
	// best detection of all in its fourth frame.
	for i := range 5 {
		push(time.Duration(i)*step, box("person", 0, 0.6), box("person", 100, 0.7), box("car", 300, 0.8))
	}
	for i := 5; i < 10; i++ {
		score := float32(0.5)
		if i == 8 {
			score = 0.95
		}
		push(time.Duration(i)*step, box("person", 100, 0.7), box("car", 300, 0.8), box("person", 500, score))
	}
	for _, e := range s.Finish() {
		last = e.Segment
	}
	if want := map[string]int{"person": 2, "car": 1}; !maps.Equal(last.Objects, want) {
		t.Errorf("objects %v, want %v", last.Objects, want)
	}
	if want := map[string]int{"person": 3, "car": 1}; !maps.Equal(last.Tracks, want) {
		t.Errorf("tracks %v, want %v", last.Tracks, want)
	}
	if last.BestScore != 0.95 || last.BestAt != 8*step {
		t.Errorf("best %v at %v, want 0.95 at %v", last.BestScore, last.BestAt, 8*step)
	}
	if last.Thumbnail != nil {
		t.Errorf("a thumbnail from frames without pixels")
	}
}

// picture returns a w×h BGR frame: a grey gradient with a white rectangle where the box is.
func picture(w, h int, pts time.Duration, box detect.Detection) *ingest.Frame {
	bgr := make([]byte, w*h*3)
	for y := range h {
		for x := range w {
			v := byte(x * 200 / w)
			if float32(x) >= box.X1 && float32(x) < box.X2 && float32(y) >= box.Y1 && float32(y) < box.Y2 {
				v = 255
			}
			i := (y*w + x) * 3
			bgr[i], bgr[i+1], bgr[i+2] = v, v, v
		}
	}
	return &ingest.Frame{Width: w, Height: h, BGR: bgr, PTS: pts, Wall: t0.Add(pts)}
}

func TestThumbnail(t *testing.T) {
	s := track.NewSegmenter(track.Config{UpdateEvery: time.Second, Tracker: hits3})
	step := 200 * time.Millisecond
	var events []track.Event
	for i := range 15 {
		score := float32(0.6)
		if i == 7 {
			score = 0.9 // after the open event, before the first update
		}
		d := detect.Detection{Class: "person", Score: score, X1: float32(400 + 20*i), Y1: 200, X2: float32(600 + 20*i), Y2: 680}
		events = append(events, s.Push(picture(1280, 720, time.Duration(i)*step, d), []detect.Detection{d})...)
	}
	events = append(events, s.Finish()...)
	var kinds []track.EventKind
	for _, e := range events {
		kinds = append(kinds, e.Kind)
		if e.Err != nil {
			t.Fatalf("%v: %v", e.Kind, e.Err)
		}
	}
	// Opened at frame 2, updated at frames 7 and 12, closed by Finish.
	if want := []track.EventKind{track.Opened, track.Updated, track.Updated, track.Closed}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	opened, updated, later, closed := events[0].Segment.Thumbnail, events[1].Segment.Thumbnail, events[2].Segment.Thumbnail, events[3].Segment.Thumbnail
	if opened == nil || updated == nil || opened == updated {
		t.Fatalf("thumbnails %p, %p: want a new one once a better frame came", opened, updated)
	}
	if later != updated || closed != updated {
		t.Errorf("thumbnails %p, %p, %p: want the same one while the best frame stays", updated, later, closed)
	}
	img, err := jpeg.Decode(bytes.NewReader(updated.JPEG))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 360 || updated.Width != 640 || updated.Height != 360 {
		t.Fatalf("thumbnail %v, said %dx%d, want 640x360", b, updated.Width, updated.Height)
	}
	if len(updated.Boxes) != 1 {
		t.Fatalf("boxes %+v, want the person", updated.Boxes)
	}
	b := updated.Boxes[0]
	// Frame 7's box, x 540-740 and y 200-680, halved.
	if want := (track.Box{Class: "person", Track: 1, Score: 0.9, X1: 270, Y1: 100, X2: 370, Y2: 340}); b != want {
		t.Errorf("box %+v, want %+v", b, want)
	}
	if b.X1 < 0 || b.Y1 < 0 || b.X2 > updated.Width || b.Y2 > updated.Height {
		t.Errorf("box %+v lies outside the %dx%d thumbnail", b, updated.Width, updated.Height)
	}
	// The box is drawn where it says: bright inside, the darker gradient left of it.
	inside, outside := grey(img, (b.X1+b.X2)/2, (b.Y1+b.Y2)/2), grey(img, b.X1-20, (b.Y1+b.Y2)/2)
	if inside < 240 || outside > 150 {
		t.Errorf("grey %d inside the box, %d left of it: the box does not match the picture", inside, outside)
	}
}

func grey(img image.Image, x, y int) uint32 {
	r, _, _, _ := img.At(x, y).RGBA()
	return r >> 8
}

// hits3 is the tracker the segmenter tests were timed with: an object counts from its third
// sighting in a row.
var hits3 = track.TrackerConfig{Hits: 3, TentativeMissed: 1}
