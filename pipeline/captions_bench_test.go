package pipeline

import (
	"cmp"
	"context"
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gocv.io/x/gocv"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/caption"
	"github.com/vigilcam/vigil/pipeline/detect"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
	"github.com/vigilcam/vigil/pipeline/track"
)

// timed records when each moment's caption was published.
type timed struct {
	mu   sync.Mutex
	at   map[string]time.Time
	sent map[string]time.Time
}

func (p *timed) Publish(_ context.Context, m *Moment) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.Models["captioner"] != "" {
		p.at[m.ID] = time.Now()
	} else if m.Revision == 1 { // the closing message: the caption is asked for now
		p.sent[m.ID] = time.Now()
	}
	return nil
}

// BenchmarkCaptionLoad offers a live camera's caption stage (one worker, the default queue and
// max age) moments closing at 0.5, 1, 2 and 4 times the rate one worker captions them, for 20
// captions' worth of time each, and prints the share captioned and the close-to-caption latency.
// It uses the generated tiny model and, when installed, the real Florence-2 ($VIGIL_MODELS_FLORENCE, else
// the shared folder's).
func BenchmarkCaptionLoad(b *testing.B) {
	onnxtest.Init(b)
	shared := filepath.Dir(sharedtest.File(b, "models", "florence-2", "tokenizer.json"))
	frame := sharedtest.FrameAt(b, sharedtest.Clip(b, "cars.mp4"), "2", 1280, 720)
	img, err := gocv.NewMatFromBytes(frame.Height, frame.Width, gocv.MatTypeCV8UC3, frame.BGR)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Pt(640, 360), 0, 0, gocv.InterpolationArea)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, small, []int{gocv.IMWriteJpegQuality, 80})
	if err != nil {
		b.Fatal(err)
	}
	thumb := append([]byte(nil), buf.GetBytes()...)
	buf.Close()
	det, err := detect.New(detect.Config{Model: sharedtest.YOLO(b), Sessions: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer det.Close()

	models := []struct{ name, dir, onnxDir string }{{"tiny", shared, filepath.Join("caption", "testdata", "tiny")}}
	if real := cmp.Or(os.Getenv("VIGIL_MODELS_FLORENCE"), shared); configs.FlorenceInstalled(real) {
		models = append(models, struct{ name, dir, onnxDir string }{"real", real, ""})
	}
	for _, m := range models {
		c, err := caption.New(caption.Config{Dir: m.dir, ONNXDir: m.onnxDir}, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		// One worker's pace, from a few captions of the same thumbnail.
		start := time.Now()
		for range 3 {
			if _, err := captionJPEG(context.Background(), c, thumb); err != nil {
				b.Fatal(err)
			}
		}
		each := time.Since(start) / 3
		b.Logf("%s (%s, 3 beams): %v per caption of a 640×360 thumbnail, %.1f captions/s", m.name, c.Name(), each.Round(time.Millisecond), float64(time.Second)/float64(each))
		for _, load := range []float64{0.5, 1, 2, 4} {
			reg := prometheus.NewRegistry()
			pub := &timed{at: map[string]time.Time{}, sent: map[string]time.Time{}}
			p := New(Config{Captions: CaptionConfig{Captioners: []Captioner{c}, Name: m.name}}, det, pub, NewMetrics(reg), slog.New(slog.DiscardHandler))
			ms := &moments{p: p, job: Job{Tenant: "t", VideoID: 1, Source: "cam", Key: []byte("k"), Live: true},
				ctx: context.Background(), state: map[string]*momentState{}, revisions: map[string]int{}}
			interval := time.Duration(float64(each) / load)
			n := int(20 * load)
			base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			tick := time.NewTicker(interval)
			for i := range n {
				<-tick.C
				at := time.Duration(i) * 2 * time.Second
				seg := track.Segment{Start: at, End: at + time.Second, StartWall: base.Add(at), EndWall: base.Add(at + time.Second),
					Objects: map[string]int{"car": 3}, Thumbnail: &track.Thumbnail{JPEG: thumb, Width: 640, Height: 360}}
				if err := ms.publish(context.Background(), []track.Event{{Kind: track.Opened, Segment: seg}, {Kind: track.Closed, Segment: seg}}); err != nil {
					b.Fatal(err)
				}
			}
			tick.Stop()
			ms.pending.Wait()
			p.Close()
			var lags []time.Duration
			for id, at := range pub.at {
				lags = append(lags, at.Sub(pub.sent[id]))
			}
			skips := map[string]float64{}
			for _, why := range []string{"queue_full", "stale", "rate"} {
				skips[why] = testutil.ToFloat64(p.metrics.captionSkips.WithLabelValues(why))
			}
			b.Logf("%s at %.1f× one worker's pace (%.1f moments/s): %d of %d captioned (%.0f%%), skipped %v; close to caption p50 %v p95 %v",
				m.name, load, float64(time.Second)/float64(interval), len(pub.at), n, 100*float64(len(pub.at))/float64(n), skips,
				quantile(lags, 0.5).Round(time.Millisecond), quantile(lags, 0.95).Round(time.Millisecond))
		}
		c.Close()
	}
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}
