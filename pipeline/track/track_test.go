package track_test

import (
	"testing"
	"time"

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

func dets(classes ...string) []detect.Detection {
	var out []detect.Detection
	for i, c := range classes {
		out = append(out, detect.Detection{Class: c, Score: 0.5 + float32(i)/100})
	}
	return out
}

// frames feeds a 5 fps stream from 0 to end, with detections where at says so.
func frames(s *track.Segmenter, end time.Duration, at func(time.Duration) []detect.Detection) []track.Segment {
	var out []track.Segment
	t0 := time.Unix(1_700_000_000, 0)
	for pts := time.Duration(0); pts <= end; pts += 200 * time.Millisecond {
		out = append(out, s.Observe(pts, t0.Add(pts), at(pts))...)
	}
	return append(out, s.Flush()...)
}

func TestSegmenter(t *testing.T) {
	sec := time.Second
	cfg := track.Config{IdleGap: 3 * sec, MaxLength: 20 * sec}
	for _, c := range []struct {
		name string
		at   func(time.Duration) []detect.Detection
		end  time.Duration
		want [][2]time.Duration // start, end of each segment
	}{
		{"nothing", func(time.Duration) []detect.Detection { return nil }, 10 * sec, nil},
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
		{"still open at the end is flushed", func(p time.Duration) []detect.Detection {
			if p >= 8*sec {
				return dets("dog")
			}
			return nil
		}, 9 * sec, [][2]time.Duration{{8 * sec, 9 * sec}}},
	} {
		got := frames(track.NewSegmenter(cfg), c.end, c.at)
		if len(got) != len(c.want) {
			t.Errorf("%s: %d segments %+v, want %d", c.name, len(got), got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if got[i].Start != w[0] || got[i].End != w[1] || !got[i].EndWall.Equal(time.Unix(1_700_000_000, 0).Add(w[1])) {
				t.Errorf("%s: segment %d spans %v-%v, want %v-%v", c.name, i, got[i].Start, got[i].End, w[0], w[1])
			}
		}
	}
}

func TestSegmentObjectsAndBest(t *testing.T) {
	s := track.NewSegmenter(track.Config{})
	t0 := time.Now()
	s.Observe(0, t0, dets("person", "person", "car"))
	s.Observe(time.Second, t0, []detect.Detection{{Class: "person", Score: 0.95}})
	s.Observe(2*time.Second, t0, dets("car", "car", "dog"))
	got := s.Flush()
	if len(got) != 1 {
		t.Fatalf("%d segments", len(got))
	}
	want := map[string]int{"person": 2, "car": 2, "dog": 1}
	for class, n := range want {
		if got[0].Objects[class] != n {
			t.Errorf("objects %v, want %v", got[0].Objects, want)
		}
	}
	if got[0].BestScore != 0.95 || got[0].BestAt != time.Second {
		t.Errorf("best %v at %v, want 0.95 at 1s", got[0].BestScore, got[0].BestAt)
	}
}
