package decode

import (
	"math"
	"time"
)

// sampler picks the frames passed on at an analysis rate: frames are due on a grid anchored at the
// first frame, anchor + ticks/fps, so the rate holds on average whatever the source's own rate.
type sampler struct {
	fps          float64
	interval     time.Duration
	started      bool
	anchor, next time.Duration
	ticks        int64
}

// newSampler passes on at most fps frames per second of stream time; 0 passes every frame.
func newSampler(fps float64) sampler {
	s := sampler{fps: fps}
	if fps > 0 {
		s.interval = seconds(1 / fps)
	}
	return s
}

// due reports whether the frame at pts is passed on; pts never decreases between calls.
func (s *sampler) due(pts time.Duration) bool {
	if s.fps == 0 {
		return true
	}
	if s.started && pts < s.next {
		return false
	}
	if !s.started || pts-s.next >= s.interval {
		// Restart the grid here after a jump in stream time, rather than catch up in a burst.
		s.anchor, s.ticks = pts, 0
	}
	s.started = true
	s.ticks++
	s.next = s.anchor + seconds(float64(s.ticks)/s.fps)
	if s.next < s.anchor { // past the end of time: nothing else is due
		s.next = math.MaxInt64
	}
	return true
}

// seconds converts without the wrap-around of an out-of-range float conversion.
func seconds(s float64) time.Duration {
	if ns := s * float64(time.Second); ns < math.MaxInt64 {
		return time.Duration(ns)
	}
	return math.MaxInt64
}
