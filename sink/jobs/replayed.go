package jobs

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/replay"
	"github.com/vigilcam/vigil/ingest/rtsp"
)

// replayed reads a file's replay through the RTSP source the cameras use, as the pipeline's
// source. Frames are handed over unbuffered and each access unit is acknowledged only after its
// frames went in, so the replay is paced by the pipeline and nothing is dropped.
type replayed struct {
	ctx    context.Context
	cancel context.CancelFunc
	rep    *replay.Replay
	epoch  time.Time
	frames chan ingest.Frame
	units  int64 // owned by the source's goroutine

	played         chan struct{} // closed when the replay has returned
	repErr, srcErr error
}

// readReplay starts rep and a TCP reader on it. Stream times become wall-clock times from epoch,
// so a file indexed again gives the same moments.
func readReplay(ctx context.Context, rep *replay.Replay, fps float64, epoch time.Time) (*replayed, error) {
	src, err := rtsp.New(rtsp.Config{URL: rep.URL(), Transport: "tcp", FPS: fps})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &replayed{ctx: ctx, cancel: cancel, rep: rep, epoch: epoch,
		frames: make(chan ingest.Frame), played: make(chan struct{})}
	go func() {
		defer close(r.played)
		// Run returns nil once every access unit is written and acknowledged: closing the replay
		// then ends the reader's session, and the reader flushes what its decoder still holds.
		if r.repErr = rep.Run(ctx); r.repErr == nil {
			rep.Close()
		} else {
			cancel()
		}
	}()
	go func() {
		defer close(r.frames)
		r.srcErr = src.Run(ctx, r)
		// A reader that failed first leaves the replay waiting for acknowledgements.
		cancel()
	}()
	return r, nil
}

// Next returns the next frame, io.EOF after the last one, or why the replay failed.
func (r *replayed) Next() (ingest.Frame, error) {
	if f, ok := <-r.frames; ok {
		f.Wall = r.epoch.Add(f.PTS)
		return f, nil
	}
	<-r.played
	switch {
	case r.repErr == nil:
		return ingest.Frame{}, io.EOF
	case errors.Is(r.repErr, context.Canceled) && r.srcErr != nil && !errors.Is(r.srcErr, context.Canceled):
		return ingest.Frame{}, r.srcErr // the reader failed, and the replay was stopped for it
	}
	return ingest.Frame{}, r.repErr
}

// close stops both sides and waits for them.
func (r *replayed) close() {
	r.cancel()
	for range r.frames {
	}
	<-r.played
}

// Streaming implements ingest.Handler.
func (r *replayed) Streaming() {}

// Frame implements ingest.Handler: it waits for the pipeline, which is what paces the replay.
func (r *replayed) Frame(f ingest.Frame) {
	select {
	case r.frames <- f:
	case <-r.ctx.Done():
	}
}

// AccessUnit implements ingest.Handler.
func (r *replayed) AccessUnit() {
	r.units++
	r.rep.Ack(r.units)
}
