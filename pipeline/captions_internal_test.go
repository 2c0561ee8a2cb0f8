package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gocv.io/x/gocv"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/caption"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
	"github.com/vigilcam/vigil/pipeline/track"
)

// tinyCaptioner loads the generated Florence-2 stand-in of pipeline/caption/testdata, greedy: it
// says "A person walking at night." of a dark picture.
func tinyCaptioner(t testing.TB) *caption.Captioner {
	t.Helper()
	onnxtest.Init(t)
	dir := filepath.Dir(sharedtest.File(t, "models", "florence-2", "tokenizer.json"))
	c, err := caption.New(caption.Config{Dir: dir, ONNXDir: filepath.Join("caption", "testdata", "tiny"), Beams: 1},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// gated holds every caption until its gate opens, as a captioner far slower than the moments
// coming in would; the caption itself is the tiny model's.
type gated struct {
	Captioner
	gate    chan struct{}
	started chan struct{}
}

func (g *gated) Caption(ctx context.Context, w, h int, bgr []byte) (string, error) {
	g.started <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return g.Captioner.Caption(ctx, w, h, bgr)
}

// collect keeps published moments.
type collect struct {
	mu      sync.Mutex
	moments []Moment
}

func (c *collect) Publish(_ context.Context, m *Moment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moments = append(c.moments, *m)
	return nil
}

func (c *collect) captioned() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for _, m := range c.moments {
		if m.Models["captioner"] != "" {
			out[m.ID] = m.Caption
		}
	}
	return out
}

// captionRig is a pipeline whose caption stage has one gated worker, and the moments of one run.
type captionRig struct {
	p    *Pipeline
	pub  *collect
	reg  *prometheus.Registry
	cap  *gated
	ms   *moments
	jpeg []byte
}

func newCaptionRig(t *testing.T, cfg CaptionConfig, live bool) *captionRig {
	t.Helper()
	onnxtest.Init(t)
	det, err := detect.New(detect.Config{Model: sharedtest.YOLO(t), Sessions: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { det.Close() })
	r := &captionRig{pub: &collect{}, reg: prometheus.NewRegistry(),
		cap: &gated{Captioner: tinyCaptioner(t), gate: make(chan struct{}), started: make(chan struct{}, 1000)}}
	cfg.Captioners, cfg.Name = []Captioner{r.cap}, "tiny"
	r.p = New(Config{Captions: cfg}, det, r.pub, NewMetrics(r.reg), slog.New(slog.DiscardHandler))
	t.Cleanup(r.p.Close)
	r.ms = &moments{p: r.p, job: Job{Tenant: "t", VideoID: 1, Source: "cam", Key: []byte("k"), Live: live},
		ctx: context.Background(), state: map[string]*momentState{}, revisions: map[string]int{}}
	img := gocv.NewMatWithSize(90, 160, gocv.MatTypeCV8UC3)
	defer img.Close()
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, img)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	r.jpeg = append([]byte(nil), buf.GetBytes()...)
	return r
}

// closeMoments publishes n one-second moments that close at once, each with its own thumbnail.
func (r *captionRig) closeMoments(t *testing.T, n int) {
	t.Helper()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		at := time.Duration(i) * 2 * time.Second
		seg := track.Segment{Start: at, End: at + time.Second, StartWall: start.Add(at), EndWall: start.Add(at + time.Second),
			Objects: map[string]int{"person": 1}, Thumbnail: &track.Thumbnail{JPEG: r.jpeg, Width: 160, Height: 90}}
		if err := r.ms.publish(context.Background(), []track.Event{{Kind: track.Opened, Segment: seg}, {Kind: track.Closed, Segment: seg}}); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *captionRig) skipped(why string) float64 {
	return testutil.ToFloat64(r.p.metrics.captionSkips.WithLabelValues(why))
}

// TestCaptionFloodStaysBounded floods a live camera's caption queue while the captioner is busy:
// publishing never waits, the queue holds at most its size, the oldest requests give way and are
// counted, and the ones kept are captioned once the captioner is free.
func TestCaptionFloodStaysBounded(t *testing.T) {
	const size, flood = 4, 60
	r := newCaptionRig(t, CaptionConfig{QueueSize: size}, true)
	r.closeMoments(t, 1)
	<-r.cap.started // the worker holds the first request
	r.closeMoments(t, flood-1)
	if n := len(r.p.captions.queue); n > size {
		t.Errorf("caption queue holds %d requests, its size is %d", n, size)
	}
	if got, want := r.skipped("queue_full"), float64(flood-1-size); got != want {
		t.Errorf("%v requests counted as dropped from the full queue, want %v", got, want)
	}
	if d := testutil.ToFloat64(r.p.metrics.depth.WithLabelValues("caption")); d != size {
		t.Errorf("caption queue depth gauge %v, want %d", d, size)
	}
	close(r.cap.gate)
	r.ms.pending.Wait()
	captioned := r.pub.captioned()
	if len(captioned) != 1+size {
		t.Errorf("%d moments captioned, want %d: the one in hand and the queue's", len(captioned), 1+size)
	}
	for id, text := range captioned {
		if text != "A person walking at night." {
			t.Errorf("moment %s captioned %q", id, text)
		}
	}
	if len(r.ms.state) != 0 {
		t.Errorf("%d closed moments still tracked after their captions", len(r.ms.state))
	}
}

// TestCaptionBudget skips live moments that waited longer than max_age or came over the rate, and
// makes a replay's moments wait instead.
func TestCaptionBudget(t *testing.T) {
	t.Run("stale", func(t *testing.T) {
		r := newCaptionRig(t, CaptionConfig{MaxAge: time.Millisecond}, true)
		r.closeMoments(t, 3)
		<-r.cap.started
		time.Sleep(10 * time.Millisecond) // the two queued requests outlive max_age
		close(r.cap.gate)
		r.ms.pending.Wait()
		if got := r.skipped("stale"); got != 2 {
			t.Errorf("%v stale requests skipped, want 2", got)
		}
		if n := len(r.pub.captioned()); n != 1 {
			t.Errorf("%d moments captioned, want the one taken before the others went stale", n)
		}
	})
	t.Run("rate", func(t *testing.T) {
		// One caption per 1000 s: the first goes, the next three are over budget.
		r := newCaptionRig(t, CaptionConfig{PerSecond: 0.001}, true)
		close(r.cap.gate)
		r.closeMoments(t, 4)
		r.ms.pending.Wait()
		if got := r.skipped("rate"); got != 3 {
			t.Errorf("%v requests over the rate skipped, want 3", got)
		}
	})
	t.Run("replay waits", func(t *testing.T) {
		r := newCaptionRig(t, CaptionConfig{QueueSize: 1, MaxAge: time.Millisecond}, false)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.closeMoments(t, 5)
		}()
		<-r.cap.started
		time.Sleep(10 * time.Millisecond)
		close(r.cap.gate)
		<-done
		r.ms.pending.Wait()
		if n := len(r.pub.captioned()); n != 5 {
			t.Errorf("%d of a replay's 5 moments captioned, want all", n)
		}
		for _, why := range []string{"stale", "rate", "queue_full", "cancelled"} {
			if got := r.skipped(why); got != 0 {
				t.Errorf("a replay's request skipped as %s", why)
			}
		}
	})
}

// TestEnrichmentRevisions: a caption arrives as the moment's next revision, with its embedding,
// and later messages of a still open moment keep it.
func TestEnrichmentRevisions(t *testing.T) {
	r := newCaptionRig(t, CaptionConfig{Every: time.Second}, true)
	close(r.cap.gate)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	thumb := &track.Thumbnail{JPEG: r.jpeg, Width: 160, Height: 90}
	seg := func(end time.Duration) track.Segment {
		return track.Segment{End: end, StartWall: start, EndWall: start.Add(end), Objects: map[string]int{"car": 2}, Thumbnail: thumb}
	}
	// Opened at 0 s: not captioned yet. Updated at 2 s: the moment has lasted a caption period.
	for _, e := range []track.Event{{Kind: track.Opened, Segment: seg(0)}, {Kind: track.Updated, Segment: seg(2 * time.Second)}} {
		if err := r.ms.publish(context.Background(), []track.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	r.ms.pending.Wait()
	if err := r.ms.publish(context.Background(), []track.Event{{Kind: track.Closed, Segment: seg(2500 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	r.ms.pending.Wait()
	var got []string
	for _, m := range r.pub.moments {
		got = append(got, fmt.Sprintf("%d:%s", m.Revision, m.Caption))
	}
	// The closed moment's thumbnail was captioned already: no second request.
	want := []string{"0:2 cars", "1:2 cars", "2:A person walking at night.", "3:A person walking at night."}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages %v, want %v", got, want)
	}
}

// paced hands out frames at a camera's pace, then opens the captioner's gate and ends.
type paced struct {
	frames []ingest.Frame
	period time.Duration
	end    func()
}

func (s *paced) Next() (ingest.Frame, error) {
	if len(s.frames) == 0 {
		s.end()
		return ingest.Frame{}, io.EOF
	}
	time.Sleep(s.period)
	f := s.frames[0]
	s.frames = s.frames[1:]
	return f, nil
}

// TestCaptionsNeverHoldUpLive runs a live camera while the captioner is stuck for the whole run:
// every frame is still analysed and the moments go out with their composed captions, while the
// caption requests give way in their own queue.
func TestCaptionsNeverHoldUpLive(t *testing.T) {
	r := newCaptionRig(t, CaptionConfig{QueueSize: 1, Every: 500 * time.Millisecond}, true)
	r.p.cfg.Moments.UpdateEvery = 500 * time.Millisecond
	vc, err := gocv.VideoCaptureFile(sharedtest.Clip(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src := &paced{period: 250 * time.Millisecond, end: func() { close(r.cap.gate) }}
	for i := 0; i < 24 && vc.Read(&img) && !img.Empty(); i++ {
		pts := time.Duration(i) * 250 * time.Millisecond
		src.frames = append(src.frames, ingest.Frame{Width: img.Cols(), Height: img.Rows(),
			BGR: append([]byte(nil), img.ToBytes()...), PTS: pts, Wall: start.Add(pts)})
	}
	res, err := r.p.Run(context.Background(), src, Job{Tenant: "t", VideoID: 1, Source: "cam", Key: []byte("k"), Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if dropped := testutil.ToFloat64(r.p.metrics.dropped.WithLabelValues("motion")); res.Frames != 24 || dropped != 0 {
		t.Errorf("analysed %d of 24 frames, dropped %v, with the captioner stuck", res.Frames, dropped)
	}
	if len(res.Moments) == 0 {
		t.Fatal("no moments from vtest.avi's pedestrians")
	}
	if r.pub.moments[0].Caption == "" || r.pub.moments[0].Models["captioner"] != "" {
		t.Errorf("first message %+v: want the composed caption", r.pub.moments[0])
	}
	// The worker took a request at the first caption period and sat on it until the end.
	if len(r.cap.started) == 0 {
		t.Error("no moment was sent for captioning")
	}
	t.Logf("%d caption requests gave way to newer ones", int(r.skipped("queue_full")))
}
