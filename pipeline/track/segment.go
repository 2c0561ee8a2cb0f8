// Package track groups a source's detections over time into segments: a segment opens with the
// first detection, grows while detections continue, and closes after an idle gap or at a maximum
// length.
package track

import (
	"time"

	"github.com/vigilcam/vigil/pipeline/detect"
)

// Config configures a Segmenter.
type Config struct {
	// IdleGap closes a segment after this long without detections. It defaults to 3s.
	IdleGap time.Duration
	// MaxLength closes a segment this long and opens the next. It defaults to 60s.
	MaxLength time.Duration
}

// Segment is a closed span of activity.
type Segment struct {
	// Start and End are the stream times of the first and last frame with detections.
	Start, End time.Duration
	// StartWall and EndWall are the same instants on the wall clock.
	StartWall, EndWall time.Time
	// Objects is the most objects of each class seen in one frame.
	Objects map[string]int
	// BestScore is the highest detection score, and BestAt the stream time of its frame.
	BestScore float32
	BestAt    time.Duration
}

// Segmenter turns one source's frames, in stream order, into segments; it is not safe for
// concurrent use.
type Segmenter struct {
	cfg  Config
	open *Segment
}

// NewSegmenter returns a segmenter with no open segment.
func NewSegmenter(cfg Config) *Segmenter {
	if cfg.IdleGap <= 0 {
		cfg.IdleGap = 3 * time.Second
	}
	if cfg.MaxLength < cfg.IdleGap {
		cfg.MaxLength = max(cfg.IdleGap, 60*time.Second)
	}
	return &Segmenter{cfg: cfg}
}

// Observe takes the detections of the frame at stream time pts (none for a frame the motion gate
// held back: time still passes) and returns the segments that closed.
func (s *Segmenter) Observe(pts time.Duration, wall time.Time, dets []detect.Detection) []Segment {
	var closed []Segment
	if s.open != nil && (pts-s.open.End >= s.cfg.IdleGap || (len(dets) > 0 && pts-s.open.Start >= s.cfg.MaxLength)) {
		closed = append(closed, *s.open)
		s.open = nil
	}
	if len(dets) == 0 {
		return closed
	}
	if s.open == nil {
		s.open = &Segment{Start: pts, StartWall: wall, Objects: map[string]int{}}
	}
	seg := s.open
	seg.End, seg.EndWall = pts, wall
	counts := map[string]int{}
	for _, d := range dets {
		counts[d.Class]++
		if d.Score > seg.BestScore {
			seg.BestScore, seg.BestAt = d.Score, pts
		}
	}
	for class, n := range counts {
		seg.Objects[class] = max(seg.Objects[class], n)
	}
	return closed
}

// Flush closes the open segment at the end of the stream.
func (s *Segmenter) Flush() []Segment {
	if s.open == nil {
		return nil
	}
	seg := *s.open
	s.open = nil
	return []Segment{seg}
}
