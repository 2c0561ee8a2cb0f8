package caption

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
)

// The captions testdata/gen_tiny_florence.py scripts into its decoder: a bright frame is a car,
// a dark one a person, and the detailed prompt an empty parking lot; beam search finds the likelier
// "The red car..." that greedy search misses.
const (
	brightGreedy = "A car on a road."
	brightBeam   = "The red car is parked on the street."
	dark         = "A person walking at night."
	detailed     = "The image shows an empty parking lot."
)

// tiny opens the generated models with the real tokenizer and configurations.
func tiny(t *testing.T, precision, task string, beams int) *Captioner {
	t.Helper()
	onnxtest.Init(t)
	dir := filepath.Dir(sharedtest.File(t, "models", "florence-2", "tokenizer.json"))
	c, err := New(Config{Dir: dir, ONNXDir: filepath.Join("testdata", "tiny"), Precision: precision, Task: task,
		Beams: beams, MaxNewTokens: 40}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// flat is a frame of one grey level; 640×360 as cameras send.
func flat(level byte) (int, int, []byte) {
	const w, h = 640, 360
	bgr := make([]byte, w*h*3)
	for i := range bgr {
		bgr[i] = level
	}
	return w, h, bgr
}

func caption(t *testing.T, c *Captioner, level byte) string {
	t.Helper()
	w, h, bgr := flat(level)
	text, err := c.Caption(context.Background(), w, h, bgr)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func TestTinyFlorence(t *testing.T) {
	for _, precision := range []string{"fp32", "fp16"} {
		t.Run(precision, func(t *testing.T) {
			greedy := tiny(t, precision, "<CAPTION>", 1)
			if got := caption(t, greedy, 230); got != brightGreedy {
				t.Errorf("greedy, bright frame: %q, want %q", got, brightGreedy)
			}
			if got := caption(t, greedy, 20); got != dark {
				t.Errorf("greedy, dark frame: %q, want %q", got, dark)
			}
			// The same session again: buffers reused from caption to caption must not leak state.
			if got := caption(t, greedy, 230); got != brightGreedy {
				t.Errorf("greedy, bright frame again: %q, want %q", got, brightGreedy)
			}
			beam := tiny(t, precision, "<CAPTION>", 0) // generation_config.json: 3 beams
			if beam.gen.Beams != 3 || beam.gen.NoRepeat != 3 {
				t.Errorf("generation_config.json gave %d beams, no_repeat_ngram_size %d; want 3 and 3", beam.gen.Beams, beam.gen.NoRepeat)
			}
			if got := caption(t, beam, 230); got != brightBeam {
				t.Errorf("3 beams, bright frame: %q, want %q", got, brightBeam)
			}
			if got := caption(t, beam, 20); got != dark {
				t.Errorf("3 beams, dark frame: %q, want %q", got, dark)
			}
			if got := caption(t, tiny(t, precision, "<DETAILED_CAPTION>", 3), 128); got != detailed {
				t.Errorf("<DETAILED_CAPTION>: %q, want %q", got, detailed)
			}
		})
	}
}

// TestBrokenCacheFails shows that the scripted decoder checks the cache wiring: each way of
// feeding it wrongly, done here by tampering with the runner between steps, loses the caption.
func TestBrokenCacheFails(t *testing.T) {
	c := tiny(t, "fp32", "<CAPTION>", 3)
	d := c.dec
	run := func(broken stepFunc) string {
		t.Helper()
		if got := caption(t, c, 230); got != brightBeam {
			t.Fatalf("intact runner: %q, want %q", got, brightBeam)
		}
		// Caption ran the encoder: its output is still in c.encOut for the broken decoding.
		d.start(c.encOut)
		defer d.reset()
		seq, err := c.gen.search(context.Background(), broken)
		if err != nil {
			return "error: " + err.Error()
		}
		return c.tok.Decode(seq, true)
	}
	for name, broken := range map[string]stepFunc{
		"beams not reordered": func(ctx context.Context, tokens []int64, _ []int) ([][]float32, error) {
			return d.step(ctx, tokens, nil)
		},
		"self-attention cache dropped": func(ctx context.Context, tokens []int64, parents []int) ([][]float32, error) {
			d.reset() // every step then runs as the first, with an empty past
			return d.step(ctx, tokens, parents)
		},
		"placeholders fed back as the cross-attention cache": func(ctx context.Context, tokens []int64, parents []int) ([][]float32, error) {
			rows, err := d.step(ctx, tokens, parents)
			for name := range d.cross {
				d.cross[name] = d.placeholder[name] // the cache branch's outputs, as a naive runner feeds them
			}
			return rows, err
		},
	} {
		cross := maps.Clone(d.cross)
		got := run(broken)
		d.cross = cross
		if got == brightBeam {
			t.Errorf("%s: still %q", name, got)
		} else {
			t.Logf("%s: %q", name, got)
		}
	}
}

func TestMissingModel(t *testing.T) {
	onnxtest.Init(t)
	dir := filepath.Dir(sharedtest.File(t, "models", "florence-2", "tokenizer.json"))
	_, err := New(Config{Dir: dir, ONNXDir: t.TempDir()}, slog.Default())
	if err == nil || !strings.Contains(err.Error(), "vision_encoder") || !strings.Contains(err.Error(), "vigil models fetch") {
		t.Errorf("empty model folder: %v, want an error naming vision_encoder and vigil models fetch", err)
	}
	_, err = New(Config{Dir: dir, ONNXDir: filepath.Join("testdata", "tiny"), Precision: "fp8"}, slog.Default())
	if err == nil || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("unknown precision: %v", err)
	}
	// A model that is not a Florence-2 part: the embedder's test model stands in as a decoder.
	onnxDir := t.TempDir()
	for _, p := range []string{partVision, partEmbed, partEncoder} {
		link(t, filepath.Join("testdata", "tiny", p+".onnx"), filepath.Join(onnxDir, p+".onnx"))
	}
	link(t, filepath.Join("..", "embed", "testdata", "tiny_model.onnx"), filepath.Join(onnxDir, partDecoder+".onnx"))
	_, err = New(Config{Dir: dir, ONNXDir: onnxDir}, slog.Default())
	if err == nil || !strings.Contains(err.Error(), "not a Florence-2") {
		t.Errorf("wrong decoder: %v", err)
	}
}

func link(t *testing.T, from, to string) {
	t.Helper()
	abs, err := filepath.Abs(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, to); err != nil {
		t.Fatal(err)
	}
}

// TestPrecisionFallback picks a part missing in the configured precision from another one, as the
// q4 export needs for its embed_tokens.
func TestPrecisionFallback(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"vision_encoder_q4", "embed_tokens_q4f16", "embed_tokens", "encoder_model_q4", "decoder_model_merged_q4", "decoder_model_merged"} {
		if err := os.WriteFile(filepath.Join(dir, f+".onnx"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := modelFiles(dir, "q4", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{partVision: "vision_encoder_q4", partEmbed: "embed_tokens", partEncoder: "encoder_model_q4", partDecoder: "decoder_model_merged_q4"}
	for part, f := range want {
		if filepath.Base(files[part]) != f+".onnx" {
			t.Errorf("%s: %s, want %s.onnx", part, files[part], f)
		}
	}
}

// TestRealFlorence captions a frame of cars.mp4 when the real Florence-2 weights are installed:
// in $VIGIL_MODELS_FLORENCE (the configuration's models.florence), else the shared folder.
func TestRealFlorence(t *testing.T) {
	onnxtest.Init(t)
	dir := os.Getenv("VIGIL_MODELS_FLORENCE")
	if dir == "" {
		dir = filepath.Dir(sharedtest.File(t, "models", "florence-2", "onnx"))
	}
	if !configs.FlorenceInstalled(dir) {
		t.Skipf("no Florence-2 decoder in %s", filepath.Join(dir, "onnx"))
	}
	c, err := New(Config{Dir: dir}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := sharedtest.FrameAt(t, sharedtest.Clip(t, "cars.mp4"), "2", 1280, 720)
	text, err := c.Caption(context.Background(), f.Width, f.Height, f.BGR)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cars.mp4 at 2 s: %q (%v)", text, c.Files())
	if !regexp.MustCompile(`(?i)\b(cars?|vehicles?|road|street|highway|traffic)\b`).MatchString(text) {
		t.Errorf("caption %q mentions no car, vehicle, road or street", text)
	}
}
