package ingest

import "time"

// Phase is where a camera's supervisor is in its connect–stream–retry cycle.
type Phase string

// The phases of a camera.
const (
	// Connecting: an attempt is opening the stream (DESCRIBE, SETUP, PLAY, first random access unit).
	Connecting Phase = "connecting"
	// Streaming: frames are arriving.
	Streaming Phase = "streaming"
	// Backoff: the last attempt failed; the next one starts after a pause.
	Backoff Phase = "backoff"
	// Stopped: the supervisor has ended (the camera was removed or disabled, or vigil is stopping).
	Stopped Phase = "stopped"
)

// State is a camera's health as its supervisor sees it, for the API and metrics.
type State struct {
	Phase Phase `json:"state"`
	// Since is when the camera entered Phase.
	Since time.Time `json:"since"`
	// LastError is why the last attempt ended; it never holds credentials.
	LastError string `json:"last_error,omitempty"`
	// FramesIn came from the camera at the analysis rate; FramesOut were taken by the pipeline;
	// Dropped were replaced by a newer frame before the busy pipeline took them.
	FramesIn  int64 `json:"frames_in"`
	FramesOut int64 `json:"frames_out"`
	Dropped   int64 `json:"dropped"`
	// Reconnects counts attempts after the first.
	Reconnects int64 `json:"reconnects"`
}
