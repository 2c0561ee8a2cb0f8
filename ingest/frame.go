// Package ingest owns video sources: it turns cameras and files into decoded frames with stream and
// wall-clock times, at the rate the pipeline analyses them.
package ingest

import "time"

// Frame is one decoded picture handed to the pipeline.
type Frame struct {
	// Seq numbers the frames a source passed on, from 0; a live source's drops leave gaps, and the
	// pipeline numbers what it reads again.
	Seq int64
	// Width and Height are the picture size in pixels.
	Width, Height int
	// BGR holds packed 8-bit BGR pixels, Width*3 bytes per row, no padding.
	BGR []byte
	// PTS is the stream time: how far into the source this frame lies. It never decreases.
	PTS time.Duration
	// Wall is the wall-clock time at which the frame was captured.
	Wall time.Time
}

// Handler receives what one attempt at a source produces. Its methods are called from one
// goroutine.
type Handler interface {
	// Streaming is called once per attempt, when its first frame has been decoded.
	Streaming()
	// Frame hands a decoded frame on; a live camera's handler must not block, a replay's may.
	Frame(f Frame)
	// AccessUnit is called after each access unit has gone through the decoder and its frames
	// through Frame, so that a paced replay can send the next one.
	AccessUnit()
}
