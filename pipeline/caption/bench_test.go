package caption

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
)

// BenchmarkCaption times one caption of a 640×360 frame of cars.mp4, greedy and with 3 beams, with
// the generated tiny model and, when installed, the real Florence-2 ($VIGIL_MODELS_FLORENCE, else the
// shared folder's), and prints beam search's cost as a ratio of greedy's from the same run.
func BenchmarkCaption(b *testing.B) {
	onnxtest.Init(b)
	shared := filepath.Dir(sharedtest.File(b, "models", "florence-2", "tokenizer.json"))
	f := sharedtest.FrameAt(b, sharedtest.Clip(b, "cars.mp4"), "2", 1280, 720)
	models := []struct{ name, dir, onnxDir string }{{"tiny", shared, filepath.Join("testdata", "tiny")}}
	real := os.Getenv("VIGIL_MODELS_FLORENCE")
	if real == "" {
		real = shared
	}
	if configs.FlorenceInstalled(real) {
		models = append(models, struct{ name, dir, onnxDir string }{"real", real, ""})
	} else {
		b.Logf("no real Florence-2 in %s/onnx: timing the tiny model only", real)
	}
	for _, m := range models {
		per := map[int]time.Duration{}
		for _, beams := range []int{1, 3} {
			c, err := New(Config{Dir: m.dir, ONNXDir: m.onnxDir, Beams: beams}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			var text string
			// A warm-up caption: the first run of a session allocates its arenas.
			if text, err = c.Caption(context.Background(), f.Width, f.Height, f.BGR); err != nil {
				b.Fatal(err)
			}
			name := map[int]string{1: "greedy", 3: "beam3"}[beams]
			b.Run(m.name+"/"+name, func(b *testing.B) {
				for b.Loop() {
					if _, err := c.Caption(context.Background(), f.Width, f.Height, f.BGR); err != nil {
						b.Fatal(err)
					}
				}
				per[beams] = b.Elapsed() / time.Duration(b.N)
				b.ReportMetric(float64(per[beams].Milliseconds()), "ms/caption")
			})
			b.Logf("%s %s: %q (%s)", m.name, name, text, c.Name())
			c.Close()
		}
		if per[1] > 0 {
			b.Logf("%s: beam search (3) takes %.2f× greedy; greedy %v, beam3 %v per caption", m.name,
				float64(per[3])/float64(per[1]), per[1].Round(time.Microsecond), per[3].Round(time.Microsecond))
		}
	}
}
