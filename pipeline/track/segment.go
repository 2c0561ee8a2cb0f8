// Package track follows a source's objects across frames and groups them into segments, the
// spans of activity that become moments: a segment opens when a tracked object appears, grows
// while tracked objects are seen, and closes after an idle gap or at a maximum length. It also
// keeps each segment's best frame and makes its thumbnail.
package track

import (
	"maps"
	"time"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/detect"
)

// Config configures a Segmenter.
type Config struct {
	// IdleGap closes a segment after this long without a confirmed track being seen. It defaults
	// to 3s.
	IdleGap time.Duration
	// MaxLength closes a segment this long and opens the next. It defaults to 60s.
	MaxLength time.Duration
	// UpdateEvery is the least stream time between two events of an open segment, so that a long
	// one is published again with its growing span without a message per frame. It defaults to 5s.
	UpdateEvery time.Duration
	// Tracker configures the tracker that decides what is an object.
	Tracker TrackerConfig
	// ThumbnailWidth is the most pixels a thumbnail is wide; wider frames are scaled down. It
	// defaults to 640.
	ThumbnailWidth int
	// ThumbnailQuality is the JPEG quality of thumbnails, 1 to 100. It defaults to 80.
	ThumbnailQuality int
}

// Segment is a snapshot of a span of activity.
type Segment struct {
	// Start is the stream time the first of its tracks was first seen (or, for a segment that
	// continues one cut at MaxLength, the time of the cut); End is the stream time of the latest
	// frame a confirmed track was seen in.
	Start, End time.Duration
	// StartWall and EndWall are the same instants on the wall clock.
	StartWall, EndWall time.Time
	// Objects is the most confirmed tracks of each class seen in one frame.
	Objects map[string]int
	// Tracks is the number of distinct confirmed tracks of each class.
	Tracks map[string]int
	// BestScore is the highest score of a confirmed track's detection, and BestAt the stream time
	// of its frame.
	BestScore float32
	BestAt    time.Duration
	// Thumbnail is made from the best frame that had pixels; nil when none had. Successive
	// snapshots share one *Thumbnail until a better frame replaces it.
	Thumbnail *Thumbnail
}

// EventKind says what happened to a segment.
type EventKind int

// What happens to a segment, in this order: one Opened, any number of Updated, one Closed.
const (
	// Opened: a confirmed track appeared while no segment was open.
	Opened EventKind = iota + 1
	// Updated: the segment grew, and UpdateEvery passed since its previous event.
	Updated
	// Closed: the segment ended, and the snapshot is final.
	Closed
)

func (k EventKind) String() string {
	switch k {
	case Opened:
		return "opened"
	case Updated:
		return "updated"
	case Closed:
		return "closed"
	}
	return "unknown"
}

// Event is a change to a segment with the segment as it stands after it.
type Event struct {
	Kind    EventKind
	Segment Segment
	// Err says why the thumbnail could not be brought up to date; the segment keeps the previous
	// one and the event is otherwise valid.
	Err error
}

// Segmenter turns one source's frames, in stream order, into segment events; it is not safe for
// concurrent use.
type Segmenter struct {
	cfg     Config
	tracker *Tracker
	open    *segment
	// lastEnd is the End of the latest closed segment: the next one starts after it.
	lastEnd time.Duration
	closed  bool // whether lastEnd is set
}

// segment is the open segment with what its snapshots are made from.
type segment struct {
	Segment
	ids        map[int]bool
	lastEvent  time.Duration
	thumbScore float32  // the best score seen in a frame with pixels
	best       *picture // that frame, while no thumbnail was made of it
	spare      []byte   // the pixels of a picture already encoded, reused for the next one
}

// NewSegmenter returns a segmenter with no open segment.
func NewSegmenter(cfg Config) *Segmenter {
	if cfg.IdleGap <= 0 {
		cfg.IdleGap = 3 * time.Second
	}
	if cfg.MaxLength < cfg.IdleGap {
		cfg.MaxLength = max(cfg.IdleGap, 60*time.Second)
	}
	if cfg.UpdateEvery <= 0 {
		cfg.UpdateEvery = 5 * time.Second
	}
	if cfg.ThumbnailWidth <= 0 {
		cfg.ThumbnailWidth = 640
	}
	if cfg.ThumbnailQuality <= 0 || cfg.ThumbnailQuality > 100 {
		cfg.ThumbnailQuality = 80
	}
	return &Segmenter{cfg: cfg, tracker: NewTracker(cfg.Tracker)}
}

// Push takes a frame and its detections, in stream order, and returns the events they cause: at
// most a Closed followed by an Opened (a segment cut at MaxLength, or a new one after an idle
// gap), or one Opened, Updated or Closed. A frame the motion gate held back comes with no
// detections: time still passes. f.BGR may be nil; only frames with pixels become thumbnails,
// and Push copies the pixels it keeps.
func (s *Segmenter) Push(f *ingest.Frame, dets []detect.Detection) []Event {
	var seen []Track
	for _, t := range s.tracker.Update(dets, f.PTS) {
		if t.Confirmed() && t.Missed == 0 {
			seen = append(seen, t)
		}
	}
	var events []Event
	if o := s.open; o != nil && (f.PTS-o.End >= s.cfg.IdleGap || (len(seen) > 0 && f.PTS-o.Start >= s.cfg.MaxLength)) {
		events = append(events, s.close())
	}
	if len(seen) == 0 {
		return events
	}
	kind := Updated
	if s.open == nil {
		kind = Opened
		start := f.PTS
		for _, t := range seen {
			start = min(start, t.FirstSeen)
		}
		if s.closed && start <= s.lastEnd {
			start = f.PTS
		}
		s.open = &segment{
			Segment: Segment{
				Start: start, StartWall: f.Wall.Add(start - f.PTS),
				Objects: map[string]int{}, Tracks: map[string]int{},
			},
			ids: map[int]bool{},
		}
	}
	o := s.open
	o.End, o.EndWall = f.PTS, f.Wall
	count := map[string]int{}
	var best float32
	for _, t := range seen {
		count[t.Class]++
		if !o.ids[t.ID] {
			o.ids[t.ID] = true
			o.Tracks[t.Class]++
		}
		best = max(best, t.Score)
	}
	for class, n := range count {
		o.Objects[class] = max(o.Objects[class], n)
	}
	if best > o.BestScore {
		o.BestScore, o.BestAt = best, f.PTS
	}
	if best > o.thumbScore && f.BGR != nil {
		o.thumbScore = best
		o.keep(f, seen)
	}
	if kind == Opened || f.PTS-o.lastEvent >= s.cfg.UpdateEvery {
		events = append(events, s.event(kind))
	}
	return events
}

// Idle closes the open segment when a live source has sent nothing for its idle gap: pts is how
// far the stream would be by now. Without it a camera that goes silent keeps its moment open
// until its next frame.
func (s *Segmenter) Idle(pts time.Duration) []Event {
	if s.open == nil || pts-s.open.End < s.cfg.IdleGap {
		return nil
	}
	return []Event{s.close()}
}

// IdleGap is the silence after which a segment closes.
func (s *Segmenter) IdleGap() time.Duration { return s.cfg.IdleGap }

// Finish closes the open segment at the end of the stream.
func (s *Segmenter) Finish() []Event {
	if s.open == nil {
		return nil
	}
	return []Event{s.close()}
}

func (s *Segmenter) close() Event {
	e := s.event(Closed)
	s.lastEnd, s.closed = s.open.End, true
	s.open = nil
	return e
}

// event snapshots the open segment, making a thumbnail first if a better frame came since the
// last one: at most one JPEG per event, none per frame.
func (s *Segmenter) event(kind EventKind) Event {
	o := s.open
	o.lastEvent = o.End
	e := Event{Kind: kind}
	if o.best != nil {
		t, err := o.best.encode(s.cfg.ThumbnailWidth, s.cfg.ThumbnailQuality)
		if err == nil {
			o.Thumbnail = t
		}
		e.Err = err
		o.spare, o.best = o.best.bgr, nil
	}
	e.Segment = o.Segment
	e.Segment.Objects = maps.Clone(o.Objects)
	e.Segment.Tracks = maps.Clone(o.Tracks)
	return e
}

// keep copies f as the segment's best frame, reusing the buffer of the previous one.
func (o *segment) keep(f *ingest.Frame, seen []Track) {
	p := o.best
	if p == nil {
		p = &picture{bgr: o.spare[:0]}
		o.spare = nil
	}
	p.bgr = append(p.bgr[:0], f.BGR...)
	p.width, p.height = f.Width, f.Height
	p.tracks = append(p.tracks[:0], seen...)
	o.best = p
}
