// Package decode owns reading video files: it demuxes and decodes a file with FFmpeg's libavformat,
// libavcodec and libswscale through cgo, and hands on packed BGR frames with stream and wall-clock
// times at the rate the pipeline analyses them.
//
// The first OpenFile takes over libav's log for the whole process: it drops every line, keeping
// only the demuxer's error lines as detail for the errors it returns. Without cgo the package
// still builds, and OpenFile returns ErrNoCgo.
package decode

import "time"

// Options controls which decoded frames are passed on.
type Options struct {
	// FPS is the analysis rate: frames are passed on at most this often in stream time
	// (every frame is still decoded, the codec needs it). 0 passes every frame. It defaults to 0.
	FPS float64
}

// Info describes an opened file.
type Info struct {
	// Codec is the codec name, e.g. "h264", "msmpeg4v3".
	Codec string
	// Width and Height are the picture size of the first frames, in pixels.
	Width, Height int
	// FPS is the nominal frame rate of the video stream; 0 when unknown.
	FPS float64
	// Duration is the length of the video stream; 0 when unknown.
	Duration time.Duration
	// Frames is the number of frames the file should decode to, from the container or from
	// Duration*FPS; 0 when unknown.
	Frames int64
	// Created is the container's creation_time tag; zero when absent or unparsable.
	Created time.Time
}
