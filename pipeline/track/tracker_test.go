package track_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/track"
)

// TestTrackerIDs follows two people crossing (their boxes swap places between frames 7 and 8, so
// only the predicted motion tells them apart), one of them missed by the detector for two frames,
// and a car that arrives late.
func TestTrackerIDs(t *testing.T) {
	person := func(x float32) detect.Detection {
		return detect.Detection{Class: "person", Score: 0.8, X1: x, Y1: 100, X2: x + 40, Y2: 180}
	}
	tr := track.NewTracker(track.TrackerConfig{Hits: 3})
	step := 200 * time.Millisecond
	ids := map[string]int{} // who -> id, once confirmed
	for i := range 16 {
		var frame []detect.Detection
		who := map[int]string{} // index in frame -> who
		if i != 4 && i != 5 {
			who[len(frame)] = "walks right"
			frame = append(frame, person(float32(20*i)))
		}
		who[len(frame)] = "walks left"
		frame = append(frame, person(float32(300-20*i)))
		if i >= 10 {
			who[len(frame)] = "car"
			frame = append(frame, detect.Detection{Class: "car", Score: 0.9, X1: 500, Y1: 50, X2: 700, Y2: 150})
		}
		tracks := tr.Update(frame, time.Duration(i)*step)
		for _, k := range tracks {
			if !k.Confirmed() || k.Missed > 0 {
				continue
			}
			name := ""
			for j, d := range frame {
				if d == k.Detection {
					name = who[j]
				}
			}
			if name == "" {
				t.Fatalf("frame %d: track %d at %+v matches no detection", i, k.ID, k.Detection)
			}
			if id, ok := ids[name]; !ok {
				ids[name] = k.ID
			} else if id != k.ID {
				t.Fatalf("frame %d: %s is track %d, was %d", i, name, k.ID, id)
			}
		}
		switch i {
		case 1:
			if len(tracks) != 2 || tracks[0].Confirmed() {
				t.Fatalf("frame 1: %+v, want two tentative tracks", tracks)
			}
		case 4, 5:
			if k := find(tracks, ids["walks right"]); k == nil || k.Missed != i-3 {
				t.Fatalf("frame %d: the missed person's track is %+v, want it coasting", i, k)
			}
		}
	}
	if want := map[string]int{"walks right": 1, "walks left": 2, "car": 3}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
}

func find(tracks []track.Track, id int) *track.Track {
	for i := range tracks {
		if tracks[i].ID == id {
			return &tracks[i]
		}
	}
	return nil
}

func TestTrackerEndsTracks(t *testing.T) {
	tr := track.NewTracker(track.TrackerConfig{Hits: 2, MaxMissed: 3, TentativeMissed: 1})
	d := []detect.Detection{{Class: "dog", Score: 0.7, X1: 10, Y1: 10, X2: 60, Y2: 60}}
	step := 200 * time.Millisecond
	// A tentative track survives TentativeMissed misses in a row, and ends at the next.
	tr.Update(d, 0)
	if got := tr.Update(nil, step); len(got) != 1 || got[0].ID != 0 || got[0].Missed != 1 {
		t.Fatalf("tentative track after one miss: %+v, want it kept, unconfirmed", got)
	}
	if got := tr.Update(nil, 2*step); len(got) != 0 {
		t.Fatalf("tentative track survived two misses: %+v", got)
	}
	tr.Update(d, 2*step)
	if got := tr.Update(d, 3*step); len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("after two hits: %+v, want track 1", got)
	}
	for i := 1; i <= 3; i++ {
		if got := tr.Update(nil, time.Duration(3+i)*step); len(got) != 1 || got[0].Missed != i {
			t.Fatalf("miss %d: %+v", i, got)
		}
	}
	if got := tr.Update(nil, 7*step); len(got) != 0 {
		t.Fatalf("a track missed MaxMissed+1 times is alive: %+v", got)
	}
	// A cat where the dog was is another object.
	cat := []detect.Detection{{Class: "cat", Score: 0.7, X1: 10, Y1: 10, X2: 60, Y2: 60}}
	tr.Update(d, 8*step)
	got := tr.Update(append(cat, d...), 9*step)
	if len(got) != 2 || got[0].ID != 2 || got[0].Class != "dog" || got[1].Confirmed() || got[1].Class != "cat" {
		t.Errorf("dog and cat: %+v, want dog as track 2 and a tentative cat", got)
	}
}
