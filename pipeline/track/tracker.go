package track

import (
	"cmp"
	"slices"
	"time"

	"github.com/vigilcam/vigil/pipeline/detect"
)

// The tracker is SORT without its Kalman filter. At the analysis rates vigil runs (a few frames
// per second) a box moves a large part of its width between frames, and what keeps an identity
// through that is predicting where it went; a constant-velocity model of the box centre, smoothed
// over matches and extrapolated by stream time (so frames held back by the motion gate are simply
// a longer step), does that. The Kalman filter's covariance would only weigh detector noise,
// which YOLO keeps to a few pixels. Matching is greedy by IoU, best pairs first: with the handful
// of objects a camera sees, it agrees with the Hungarian assignment except in contrived ties.

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// IoU is the least overlap between a track's predicted box and a detection of its class for
	// the two to match. It defaults to 0.3.
	IoU float32
	// Hits is how many frames an object must be matched in, with no more than TentativeMissed
	// misses in a row between them, before its track is confirmed and numbered; a detection seen
	// fewer times is taken for noise. It defaults to 1: at the few frames a second vigil
	// analyses, YOLOv8n may see a fast or overhead object in one frame of its passage only, and a
	// moment must not miss it.
	Hits int
	// MaxMissed is how many frames in a row a confirmed track may go unmatched, coasting on its
	// predicted box, before it ends. It defaults to 5.
	MaxMissed int
	// TentativeMissed is how many frames in a row a track not yet confirmed may go unmatched: a
	// small detector loses real objects for a frame now and then (overhead cars, far people),
	// noise seldom comes back. It defaults to 2.
	TentativeMissed int
}

// Track is an object followed across frames.
type Track struct {
	// ID numbers a source's confirmed tracks from 1, in the order they were confirmed; it is 0
	// while the track is tentative.
	ID int
	// Detection is the track's detection in the latest frame, or, when Missed > 0, the box
	// predicted for that frame with the last detection's class and score.
	detect.Detection
	// Hits counts the frames the track was matched in.
	Hits int
	// Missed counts the frames in a row, up to the latest, the track was not matched in.
	Missed int
	// FirstSeen and LastSeen are the stream times of its first and latest match.
	FirstSeen, LastSeen time.Duration
}

// Confirmed reports whether the track was seen often enough to count as an object.
func (t Track) Confirmed() bool { return t.ID != 0 }

// tracked is a Track with its motion model.
type tracked struct {
	Track
	last   detect.Detection // the latest matched detection
	vx, vy float64          // centre velocity in pixels per second
	moving bool             // whether vx, vy were measured yet
}

// Tracker gives one source's detections identities that persist across frames; it is not safe
// for concurrent use.
type Tracker struct {
	cfg    TrackerConfig
	tracks []*tracked
	nextID int
}

// NewTracker returns a tracker with no tracks.
func NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.IoU <= 0 {
		cfg.IoU = 0.3
	}
	if cfg.Hits < 1 {
		cfg.Hits = 1
	}
	if cfg.TentativeMissed <= 0 {
		cfg.TentativeMissed = 2
	}
	if cfg.MaxMissed <= 0 {
		cfg.MaxMissed = 5
	}
	return &Tracker{cfg: cfg, nextID: 1}
}

// Update matches the detections of the frame at stream time pts (later than the previous frame's)
// to the tracks and returns the tracks alive after it, confirmed ones by ID, then tentative ones.
// A frame without detections still counts as a miss for every track.
func (t *Tracker) Update(dets []detect.Detection, pts time.Duration) []Track {
	predicted := make([]detect.Detection, len(t.tracks))
	for i, tr := range t.tracks {
		predicted[i] = tr.predict(pts)
	}
	type pair struct {
		track, det int
		iou        float32
	}
	var pairs []pair
	for i := range t.tracks {
		for j, d := range dets {
			if d.Class != predicted[i].Class {
				continue
			}
			if v := iou(predicted[i], d); v >= t.cfg.IoU {
				pairs = append(pairs, pair{i, j, v})
			}
		}
	}
	slices.SortStableFunc(pairs, func(a, b pair) int { return cmp.Compare(b.iou, a.iou) })
	trackDone := make([]bool, len(t.tracks))
	detDone := make([]bool, len(dets))
	for _, p := range pairs {
		if trackDone[p.track] || detDone[p.det] {
			continue
		}
		trackDone[p.track], detDone[p.det] = true, true
		t.tracks[p.track].match(dets[p.det], pts)
	}
	live := make([]*tracked, 0, len(t.tracks)+len(dets))
	for i, tr := range t.tracks {
		if !trackDone[i] {
			tr.Missed++
			tr.Detection = predicted[i]
			if (!tr.Confirmed() && tr.Missed > t.cfg.TentativeMissed) || tr.Missed > t.cfg.MaxMissed {
				continue
			}
		}
		live = append(live, tr)
	}
	for j, d := range dets {
		if !detDone[j] {
			live = append(live, &tracked{Track: Track{Detection: d, Hits: 1, FirstSeen: pts, LastSeen: pts}, last: d})
		}
	}
	t.tracks = live
	out := make([]Track, 0, len(t.tracks))
	for _, tr := range t.tracks {
		if !tr.Confirmed() && tr.Hits >= t.cfg.Hits {
			tr.ID = t.nextID
			t.nextID++
		}
		out = append(out, tr.Track)
	}
	slices.SortStableFunc(out, func(a, b Track) int {
		if a.Confirmed() != b.Confirmed() {
			if a.Confirmed() {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// match moves the track to d, seen at pts, and updates its velocity.
func (tr *tracked) match(d detect.Detection, pts time.Duration) {
	if dt := (pts - tr.LastSeen).Seconds(); dt > 0 {
		x0, y0 := centre(tr.last)
		x1, y1 := centre(d)
		vx, vy := (x1-x0)/dt, (y1-y0)/dt
		if tr.moving {
			// Half the new measurement, half the history: steady against detector jitter, quick
			// enough for an object that turns.
			vx, vy = (tr.vx+vx)/2, (tr.vy+vy)/2
		}
		tr.vx, tr.vy, tr.moving = vx, vy, true
	}
	tr.Detection, tr.last = d, d
	tr.Hits++
	tr.Missed = 0
	tr.LastSeen = pts
}

// predict returns the box where the track's object should be at pts.
func (tr *tracked) predict(pts time.Duration) detect.Detection {
	d := tr.last
	dt := (pts - tr.LastSeen).Seconds()
	dx, dy := float32(tr.vx*dt), float32(tr.vy*dt)
	d.X1, d.X2, d.Y1, d.Y2 = d.X1+dx, d.X2+dx, d.Y1+dy, d.Y2+dy
	return d
}

func centre(d detect.Detection) (float64, float64) {
	return float64(d.X1+d.X2) / 2, float64(d.Y1+d.Y2) / 2
}

// iou is the intersection over union of two boxes; degenerate boxes overlap nothing.
func iou(a, b detect.Detection) float32 {
	w := min(a.X2, b.X2) - max(a.X1, b.X1)
	h := min(a.Y2, b.Y2) - max(a.Y1, b.Y1)
	if w <= 0 || h <= 0 {
		return 0
	}
	inter := w * h
	union := (a.X2-a.X1)*(a.Y2-a.Y1) + (b.X2-b.X1)*(b.Y2-b.Y1) - inter
	return inter / union
}
