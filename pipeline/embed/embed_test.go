package embed_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/embed"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// tinyConfig runs testdata/tiny_model.onnx, which gen_tiny_model.py documents.
func tinyConfig(t *testing.T) embed.Config {
	t.Helper()
	onnxtest.Init(t)
	return embed.Config{
		Model:     filepath.Join("testdata", "tiny_model.onnx"),
		Tokenizer: filepath.Join("testdata", "tokenizer.json"),
	}
}

func newEmbedder(t *testing.T, cfg embed.Config) *embed.Embedder {
	t.Helper()
	e, err := embed.New(cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// tinyExpected is the tiny model's sentence embedding computed in Go: the mean over the text's
// tokens of E[id % 13] + T[0] (the tables of gen_tiny_model.py), L2-normalised.
func tinyExpected(tok *embed.Tokenizer, text string, maxLen int) []float32 {
	ids, _, _ := tok.Encode(text, maxLen)
	sum := make([]float64, embed.Dim)
	for _, id := range ids {
		k := int(id % 13)
		for j := range sum {
			sum[j] += float64((k*31+j*17)%97-48)/16 + float64((j*5)%11-5)/8
		}
	}
	norm := 0.0
	for j := range sum {
		sum[j] /= float64(len(ids))
		norm += sum[j] * sum[j]
	}
	v := make([]float32, embed.Dim)
	for j := range sum {
		v[j] = float32(sum[j] / math.Sqrt(norm))
	}
	return v
}

func assertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for j := range got {
		if math.Abs(float64(got[j]-want[j])) > tol {
			t.Fatalf("%s: value %d is %g, want %g", what, j, got[j], want[j])
		}
	}
}

var tinyTexts = []string{
	"a man riding a bike",
	"The car, parked in the snow.",
	"",
	"walking near the gate at night!",
	"a",
	"red cars",
	"café",
	"person riding a bicycle near the red car parked in the snow",
}

func TestEmbedPoolsOverMaskAndNormalises(t *testing.T) {
	e := newEmbedder(t, tinyConfig(t))
	tok := tinyTokenizer(t)
	got, err := e.Embed(t.Context(), tinyTexts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tinyTexts) {
		t.Fatalf("%d embeddings for %d texts", len(got), len(tinyTexts))
	}
	for i, text := range tinyTexts {
		// The batch pads every text to the longest one; padded positions carry an offset of
		// 100 in the tiny model, so any leak into the mean would be far outside the tolerance.
		assertClose(t, fmt.Sprintf("%q", text), got[i], tinyExpected(tok, text, 256), 1e-5)
		norm := 0.0
		for _, x := range got[i] {
			norm += float64(x) * float64(x)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("%q: squared norm %g, want 1", text, norm)
		}
	}
}

func TestEmbedBatchingEqualsOneByOne(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.BatchSize = 3
	e := newEmbedder(t, cfg)
	batched, err := e.Embed(t.Context(), tinyTexts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range tinyTexts {
		alone, err := e.Embed(t.Context(), []string{text})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, fmt.Sprintf("%q alone vs batched", text), alone[0], batched[i], 1e-6)
	}
}

func TestEmbedTruncates(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.MaxLength = 5
	e := newEmbedder(t, cfg)
	long := strings.Repeat("man riding a bike ", 50)
	got, err := e.Embed(t.Context(), []string{long, "man riding a"})
	if err != nil {
		t.Fatal(err)
	}
	// Five tokens: [CLS] man riding a [SEP], the same as the short text.
	assertClose(t, "truncated", got[0], tinyExpected(tinyTokenizer(t), long, 5), 1e-5)
	assertClose(t, "truncated vs short", got[0], got[1], 1e-6)
}

func TestEmbedConcurrent(t *testing.T) {
	e := newEmbedder(t, tinyConfig(t))
	want, err := e.Embed(t.Context(), tinyTexts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			text := tinyTexts[w]
			got, err := e.Embed(t.Context(), []string{text})
			if err != nil {
				t.Error(err)
				return
			}
			for j := range got[0] {
				if math.Abs(float64(got[0][j]-want[w][j])) > 1e-6 {
					t.Errorf("%q: value %d differs under concurrency", text, j)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEmbedNothing(t *testing.T) {
	e := newEmbedder(t, tinyConfig(t))
	got, err := e.Embed(t.Context(), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("Embed(nil) = %v, %v; want nothing", got, err)
	}
}

func TestEmbedCancelled(t *testing.T) {
	e := newEmbedder(t, tinyConfig(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Embed(ctx, tinyTexts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Embed on a cancelled context: %v, want context.Canceled", err)
	}
}

func TestCloseTwice(t *testing.T) {
	e, err := embed.New(tinyConfig(t), discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.Embed(t.Context(), []string{"a"}); !errors.Is(err, embed.ErrClosed) {
		t.Fatalf("Embed after Close: %v, want ErrClosed", err)
	}
}

func TestNewRejects(t *testing.T) {
	base := tinyConfig(t)
	cases := map[string]struct {
		edit func(*embed.Config)
		is   error
	}{
		// Declared as [batch, seq, "hidden"], so New learns the size from a run.
		"hidden size 8":       {func(c *embed.Config) { c.Model = filepath.Join("testdata", "tiny_model_dim8.onnx") }, embed.ErrDimension},
		"absent model":        {func(c *embed.Config) { c.Model = filepath.Join("testdata", "absent.onnx") }, nil},
		"not a model":         {func(c *embed.Config) { c.Model = filepath.Join("testdata", "tokenizer.json") }, nil},
		"absent tokenizer":    {func(c *embed.Config) { c.Tokenizer = filepath.Join("testdata", "absent.json") }, os.ErrNotExist},
		"max length over 512": {func(c *embed.Config) { c.MaxLength = 513 }, nil},
	}
	for name, c := range cases {
		cfg := base
		c.edit(&cfg)
		e, err := embed.New(cfg, discard)
		if err == nil {
			e.Close()
			t.Errorf("%s: New succeeded", name)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v, want %v", name, err, c.is)
		}
	}
}

// TestRealWeights runs all-MiniLM-L6-v2 itself ($VIGIL_MODELS_EMBEDDER, else the shared folder's
// onnx/model.onnx) and checks that paraphrases score above unrelated pairs.
func TestRealWeights(t *testing.T) {
	model := os.Getenv("VIGIL_MODELS_EMBEDDER")
	if model == "" {
		model = sharedtest.File(t, "models", "all-MiniLM-L6-v2", "onnx", "model.onnx")
	}
	onnxtest.Init(t)
	e := newEmbedder(t, embed.Config{
		Model:     model,
		Tokenizer: sharedtest.File(t, "models", "all-MiniLM-L6-v2", "tokenizer.json"),
	})
	for _, c := range []struct{ anchor, paraphrase, unrelated string }{
		{"a man riding a bicycle", "a person on a bike", "a red car parked in the snow"},
		{"a dog runs across the yard", "a puppy running on the grass", "two trucks at a loading dock"},
		{"someone opens the front gate at night", "a person opening the gate in the dark", "a cat sleeping on a sofa"},
		{"cars stuck in heavy traffic", "a traffic jam on the highway", "a woman reading a book indoors"},
	} {
		v, err := e.Embed(t.Context(), []string{c.anchor, c.paraphrase, c.unrelated})
		if err != nil {
			t.Fatal(err)
		}
		near, far := dot(v[0], v[1]), dot(v[0], v[2])
		t.Logf("%q: paraphrase %.3f, unrelated %.3f", c.anchor, near, far)
		if near <= far {
			t.Errorf("%q is closer to %q (%.3f) than to %q (%.3f)", c.anchor, c.unrelated, far, c.paraphrase, near)
		}
	}
}

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
