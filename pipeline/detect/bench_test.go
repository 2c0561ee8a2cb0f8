package detect_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest"
)

// BenchmarkDetectOverhead measures what the detector adds around ONNX Runtime: letterbox into the
// reused tensor, the run, decoding [1,84,8400] and NMS, against the bare session run on the same
// frames with one thread each. Target (DESIGN.md §8): at most 1.15. Run with make bench-pipeline.
func BenchmarkDetectOverhead(b *testing.B) {
	d := newDetector(b, 1)
	clip := sharedtest.Clip(b, "vtest.avi")
	var frames []*ingest.Frame
	for _, at := range []string{"2", "10", "25", "40", "55", "70"} {
		frames = append(frames, sharedtest.FrameAt(b, clip, at, 768, 576))
	}
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 3, 640, 640))
	if err != nil {
		b.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 84, 8400))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Destroy()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer opts.Destroy()
	opts.SetIntraOpNumThreads(1)
	opts.SetInterOpNumThreads(1)
	raw, err := ort.NewAdvancedSession(sharedtest.YOLO(b), []string{"images"}, []string{"output0"},
		[]ort.Value{in}, []ort.Value{out}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Destroy()
	for range 3 { // warm both up
		raw.Run()
		d.Detect(context.Background(), frames[0])
	}
	const rounds = 5
	// Interleaved, so that noise from other work on the machine hits both alike.
	var detectTime, rawTime time.Duration
	for range rounds {
		for _, f := range frames {
			start := time.Now()
			if _, err := d.Detect(context.Background(), f); err != nil {
				b.Fatal(err)
			}
			detectTime += time.Since(start)
			start = time.Now()
			if err := raw.Run(); err != nil {
				b.Fatal(err)
			}
			rawTime += time.Since(start)
		}
	}
	n := time.Duration(rounds * len(frames))
	ratio := detectTime.Seconds() / rawTime.Seconds()
	fmt.Printf("detect stage %v per frame, bare ONNX Runtime run %v: %.3fx (target <= 1.15)\n",
		(detectTime / n).Round(time.Microsecond), (rawTime / n).Round(time.Microsecond), ratio)
	b.ReportMetric(ratio, "x_raw_ort")
}
