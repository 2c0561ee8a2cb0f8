package preprocess_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/caption/preprocess"
)

// florence is Florence-2-base's preprocessor_config.json, written out so that tests and
// benchmarks need no shared folder.
func florence() preprocess.Config {
	return preprocess.Config{
		Width: 768, Height: 768,
		Resample:    preprocess.Bicubic,
		Rescale:     0.00392156862745098,
		Mean:        [3]float32{0.485, 0.456, 0.406},
		Std:         [3]float32{0.229, 0.224, 0.225},
		DoResize:    true,
		DoRescale:   true,
		DoNormalize: true,
	}
}

// synth builds testdata/gen_golden.py's synthetic frame, packed BGR: ramps that wrap round, hashed
// noise, and hard black and white 8-pixel blocks.
func synth(w, h int) []byte {
	bgr := make([]byte, 0, w*h*3)
	for y := range h {
		for x := range w {
			for c := range 3 {
				X, Y, C := int64(x), int64(y), int64(c)
				noise := (((X*7919 + Y*104729 + C*31) * 2654435761) >> 13) & 31
				v := (X*3 + Y*2 + C*80 + noise) & 255
				if (x/8+y/8)%3 == 0 {
					v = 255 * int64(x/8%2)
				}
				bgr = append(bgr, byte(v))
			}
		}
	}
	return bgr
}

// golden is testdata/golden.json, written by gen_golden.py with Pillow and numpy.
type golden struct {
	Pillow  string     `json:"pillow"`
	Rescale float64    `json:"rescale"`
	Mean    [3]float64 `json:"mean"`
	Std     [3]float64 `json:"std"`
	Cases   []struct {
		Name        string `json:"name"`
		FrameWidth  int    `json:"frame_width"`
		FrameHeight int    `json:"frame_height"`
		Width       int    `json:"width"`
		Height      int    `json:"height"`
		Resample    int    `json:"resample"`
		SHA256      string `json:"sha256"`
	} `json:"cases"`
}

// readGolden reads the manifest of the golden cases.
func readGolden(t *testing.T) golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("golden.json has no cases")
	}
	return g
}

// sample is one record of a case's .bin file.
type sample struct {
	Index uint32
	Value float32
}

// readSamples reads the sampled Pillow values of the named case.
func readSamples(t *testing.T, name string) []sample {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	s := make([]sample, len(data)/8)
	if err := binary.Read(bytes.NewReader(data), binary.LittleEndian, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// checksum is the SHA-256 of values as little-endian float32, as gen_golden.py hashes them.
func checksum(values []float32) string {
	buf := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// TestGolden compares with pixel_values computed by Pillow's resize and numpy: sampled values
// within 1e-5, and the whole output bit for bit through its checksum. Cases with the same output
// size share a Processor, so that its tables are rebuilt when the frame size changes.
func TestGolden(t *testing.T) {
	g := readGolden(t)
	procs := map[[3]int]*preprocess.Processor{}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			key := [3]int{c.Width, c.Height, c.Resample}
			p := procs[key]
			if p == nil {
				cfg := preprocess.Config{
					Width: c.Width, Height: c.Height, Resample: c.Resample, Rescale: g.Rescale,
					DoResize: true, DoRescale: true, DoNormalize: true,
				}
				for i := range 3 {
					cfg.Mean[i], cfg.Std[i] = float32(g.Mean[i]), float32(g.Std[i])
				}
				p = preprocess.New(cfg)
				procs[key] = p
			}
			got, err := p.Pixels(c.FrameWidth, c.FrameHeight, synth(c.FrameWidth, c.FrameHeight))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3*c.Width*c.Height {
				t.Fatalf("%d values, want %d", len(got), 3*c.Width*c.Height)
			}
			var worst float64
			for _, s := range readSamples(t, c.Name) {
				d := math.Abs(float64(got[s.Index] - s.Value))
				worst = max(worst, d)
				if d > 1e-5 {
					plane := c.Width * c.Height
					i := int(s.Index)
					t.Errorf("channel %d y %d x %d: %v, Pillow %v", i/plane, i%plane/c.Width, i%c.Width, got[i], s.Value)
				}
			}
			if sum := checksum(got); sum != c.SHA256 {
				t.Errorf("output checksum %s, Pillow's %s: not bit-identical", sum, c.SHA256)
			}
			t.Logf("Pillow %s: largest sampled difference %g", g.Pillow, worst)
		})
	}
}

// TestConstantColour checks channel order and normalisation by hand: a uniform frame stays uniform
// through either resize, and each channel holds ((v/255)-mean)/std for its own RGB value.
func TestConstantColour(t *testing.T) {
	const b, g, r = 10, 128, 250
	// ((v/255)-mean)/std in float64, worked from Florence-2's mean and std.
	want := [3]float64{
		(r/255.0 - 0.485) / 0.229, // 2.16328...
		(g/255.0 - 0.456) / 0.224, // 0.20518...
		(b/255.0 - 0.406) / 0.225, // -1.63015...
	}
	p := preprocess.New(florence())
	for _, size := range [][2]int{{640, 360}, {1920, 1080}, {768, 768}} {
		bgr := bytes.Repeat([]byte{b, g, r}, size[0]*size[1])
		got, err := p.Pixels(size[0], size[1], bgr)
		if err != nil {
			t.Fatal(err)
		}
		plane := 768 * 768
		for c := range 3 {
			first := got[c*plane]
			if d := math.Abs(float64(first) - want[c]); d > 1e-6 {
				t.Errorf("%v frame, channel %d: %v, want %v", size, c, first, want[c])
			}
			for i, v := range got[c*plane : (c+1)*plane] {
				if v != first {
					t.Fatalf("%v frame, channel %d: value %d is %v, not %v like the first", size, c, i, v, first)
				}
			}
		}
	}
}

// TestSameSizePassesThrough checks that a frame already at the output size is not resampled, as
// Pillow copies it: every value is its own byte's, normalised.
func TestSameSizePassesThrough(t *testing.T) {
	cfg := florence()
	bgr := synth(768, 768)
	got, err := preprocess.New(cfg).Pixels(768, 768, bgr)
	if err != nil {
		t.Fatal(err)
	}
	plane := 768 * 768
	for c := range 3 {
		for i := range plane {
			v := bgr[3*i+2-c] // RGB channel c is BGR byte 2-c
			want := (float32(float64(v)*cfg.Rescale) - cfg.Mean[c]) / cfg.Std[c]
			if got[c*plane+i] != want {
				t.Fatalf("channel %d pixel %d: %v, want %v for byte %d", c, i, got[c*plane+i], want, v)
			}
		}
	}
}

// TestPixelsReuse checks that switching frame sizes leaves nothing behind from the last one.
func TestPixelsReuse(t *testing.T) {
	p := preprocess.New(florence())
	small := synth(64, 36)
	first, err := p.Pixels(64, 36, small)
	if err != nil {
		t.Fatal(err)
	}
	first = append([]float32(nil), first...)
	if _, err := p.Pixels(100, 900, synth(100, 900)); err != nil {
		t.Fatal(err)
	}
	again, err := p.Pixels(64, 36, small)
	if err != nil {
		t.Fatal(err)
	}
	if checksum(again) != checksum(first) {
		t.Error("same frame gave different values after a frame of another size")
	}
}

// TestPixelsErrors checks that bad frames and unsupported configs are refused, not processed.
func TestPixelsErrors(t *testing.T) {
	p := preprocess.New(florence())
	for _, tc := range []struct {
		name          string
		width, height int
		n             int
	}{
		{"zero width", 0, 10, 0},
		{"negative height", 10, -1, 0},
		{"short buffer", 64, 36, 64*36*3 - 1},
		{"long buffer", 64, 36, 64*36*3 + 3},
	} {
		if _, err := p.Pixels(tc.width, tc.height, make([]byte, tc.n)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}

	noResize := florence()
	noResize.DoResize = false
	if _, err := preprocess.New(noResize).Pixels(64, 36, synth(64, 36)); err == nil {
		t.Error("frame of the wrong size without do_resize: no error")
	}

	for name, edit := range map[string]func(*preprocess.Config){
		"centre crop": func(c *preprocess.Config) { c.DoCenterCrop = true },
		"nearest":     func(c *preprocess.Config) { c.Resample = 0 },
		"lanczos":     func(c *preprocess.Config) { c.Resample = 1 },
		"no size":     func(c *preprocess.Config) { c.Width, c.Height = 0, 0 },
		"negative":    func(c *preprocess.Config) { c.Height = -768 },
		"zero std":    func(c *preprocess.Config) { c.Std[1] = 0 },
	} {
		cfg := florence()
		edit(&cfg)
		if _, err := preprocess.New(cfg).Pixels(64, 36, synth(64, 36)); err == nil {
			t.Errorf("config with %s: no error", name)
		}
	}
}

// TestLoadFlorence reads the model's own preprocessor_config.json.
func TestLoadFlorence(t *testing.T) {
	path := sharedtest.File(t, "models", "florence-2", "preprocessor_config.json")
	cfg, err := preprocess.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != florence() {
		t.Errorf("Load = %+v, want %+v", cfg, florence())
	}
}

// TestLoad checks CLIPImageProcessor's defaults and the settings Load refuses.
func TestLoad(t *testing.T) {
	const sized = `"size": {"height": 32, "width": 48}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.5, 1]`
	for _, tc := range []struct {
		name, json string
		err        string // part of the error, or "" for none
	}{
		{"defaults", `{` + sized + `, "do_center_crop": false}`, ""},
		{"centre crop by default", `{` + sized + `}`, "do_center_crop"},
		{"centre crop", `{` + sized + `, "do_center_crop": true}`, "do_center_crop"},
		{"nearest", `{` + sized + `, "do_center_crop": false, "resample": 0}`, "resample 0"},
		{"no size", `{"image_mean": [0.5, 0.5, 0.5], "image_std": [1, 1, 1], "do_center_crop": false}`, "size"},
		{"shortest edge", `{"size": {"shortest_edge": 224}, "image_mean": [0, 0, 0], "image_std": [1, 1, 1], "do_center_crop": false}`, "shortest_edge"},
		{"no mean", `{"size": {"height": 32, "width": 48}, "do_center_crop": false}`, "image_mean"},
		{"bad json", `{"size": 768}`, "size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "preprocessor_config.json")
			if err := os.WriteFile(path, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := preprocess.Load(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// CLIPImageProcessor's defaults fill in what the file leaves out.
			want := preprocess.Config{
				Width: 48, Height: 32, Resample: preprocess.Bicubic, Rescale: 1.0 / 255,
				Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.5, 1},
				DoResize: true, DoRescale: true, DoNormalize: true,
			}
			if cfg != want {
				t.Errorf("Load = %+v, want %+v", cfg, want)
			}
		})
	}
	if _, err := preprocess.Load(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Error("absent file: no error")
	}
}

// BenchmarkPixels times one frame of each size the cameras send, with Florence-2's settings.
func BenchmarkPixels(b *testing.B) {
	for _, size := range [][2]int{{640, 360}, {1920, 1080}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			p := preprocess.New(florence())
			bgr := synth(size[0], size[1])
			// The first frame of a size builds the tables; time the frames after it.
			if _, err := p.Pixels(size[0], size[1], bgr); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Pixels(size[0], size[1], bgr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
