// Package preprocess turns a decoded BGR frame into Florence-2's pixel_values, as Hugging Face's
// CLIPImageProcessor computes them with the settings of preprocessor_config.json: resize of the
// 8-bit RGB picture with Pillow's resampling, then rescale and normalise in float32, laid out
// channels first. The resize reproduces Pillow's fixed-point arithmetic, so that the model gets
// the very values the Python processor would give it, bit for bit.
package preprocess

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Pillow's resampling filter numbers, as preprocessor_config.json's resample names them.
const (
	Bilinear = 2
	Bicubic  = 3
)

// Config is preprocessor_config.json's part that matters.
type Config struct {
	// Width and Height are the output size (size.width, size.height).
	Width, Height int
	// Resample is the Pillow filter for the resize: Bicubic or Bilinear.
	Resample int
	// Rescale multiplies the 8-bit values (rescale_factor). It is float64 because the processor
	// multiplies in float64 before rounding to float32; a float32 factor would move half of the
	// 256 byte values by one ulp.
	Rescale float64
	// Mean and Std normalise each channel, in RGB order (image_mean, image_std).
	Mean, Std [3]float32
	// DoResize, DoRescale, DoNormalize and DoCenterCrop switch the steps on. A centre crop is not
	// supported, and without a resize a frame must already have the output size.
	DoResize, DoRescale, DoNormalize, DoCenterCrop bool
}

// fileConfig mirrors the keys of preprocessor_config.json that Load reads.
type fileConfig struct {
	Size struct {
		Height int `json:"height"`
		Width  int `json:"width"`
	} `json:"size"`
	Resample      int       `json:"resample"`
	RescaleFactor float64   `json:"rescale_factor"`
	ImageMean     []float64 `json:"image_mean"`
	ImageStd      []float64 `json:"image_std"`
	DoResize      bool      `json:"do_resize"`
	DoRescale     bool      `json:"do_rescale"`
	DoNormalize   bool      `json:"do_normalize"`
	DoCenterCrop  bool      `json:"do_center_crop"`
}

// Load reads preprocessor_config.json. A key the file leaves out takes CLIPImageProcessor's
// default, except size, image_mean and image_std, which it must give. Settings Processor cannot
// honour (a centre crop, a filter other than bicubic or bilinear, a size without height and width)
// are errors.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("preprocess: %w", err)
	}
	// Unmarshal leaves absent keys alone, so these are the defaults.
	f := fileConfig{
		Resample:      Bicubic,
		RescaleFactor: 1.0 / 255,
		DoResize:      true,
		DoRescale:     true,
		DoNormalize:   true,
		DoCenterCrop:  true,
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return Config{}, fmt.Errorf("preprocess: %s: %w", path, err)
	}
	cfg := Config{
		Width:        f.Size.Width,
		Height:       f.Size.Height,
		Resample:     f.Resample,
		Rescale:      f.RescaleFactor,
		DoResize:     f.DoResize,
		DoRescale:    f.DoRescale,
		DoNormalize:  f.DoNormalize,
		DoCenterCrop: f.DoCenterCrop,
	}
	if f.DoNormalize {
		if len(f.ImageMean) != 3 || len(f.ImageStd) != 3 {
			return Config{}, fmt.Errorf("preprocess: %s: image_mean and image_std need 3 values each, have %d and %d",
				path, len(f.ImageMean), len(f.ImageStd))
		}
		// Rounded from float64, as numpy rounds the parsed JSON numbers, not straight from the
		// decimal text: the two can differ in the last bit.
		for c := range 3 {
			cfg.Mean[c] = float32(f.ImageMean[c])
			cfg.Std[c] = float32(f.ImageStd[c])
		}
	}
	if err := cfg.check(); err != nil {
		return Config{}, fmt.Errorf("preprocess: %s: %w", path, err)
	}
	return cfg, nil
}

// check reports a setting Processor cannot honour.
func (c Config) check() error {
	switch {
	case c.Width <= 0 || c.Height <= 0:
		return fmt.Errorf("size must give a positive height and width (shortest_edge is not supported), have %dx%d",
			c.Width, c.Height)
	case c.DoCenterCrop:
		return errors.New("do_center_crop is not supported")
	case c.DoResize && c.Resample != Bicubic && c.Resample != Bilinear:
		return fmt.Errorf("resample %d is not supported (want %d bicubic or %d bilinear)", c.Resample, Bicubic, Bilinear)
	case c.DoNormalize && (c.Std[0] == 0 || c.Std[1] == 0 || c.Std[2] == 0):
		return fmt.Errorf("image_std %v has a zero", c.Std)
	}
	return nil
}

// Processor turns frames into pixel_values. It reuses its buffers and coefficient tables between
// calls; it is not safe for concurrent use (one per caption worker).
type Processor struct {
	cfg Config
	err error
	// lut maps a byte to its output value, per RGB channel: rescale and normalise depend on
	// nothing else.
	lut [3][256]float32
	// The tables for the last input size, nil for a pass Pillow would skip.
	inW, inH      int
	horiz, vert   *coeffs
	wide, resized []byte  // after the horizontal pass, after both; packed BGR
	acc           []int32 // the vertical pass's sums for one row
	out           []float32
}

// New returns a Processor for cfg. An unsupported cfg makes every Pixels call fail.
func New(cfg Config) *Processor {
	if err := cfg.check(); err != nil {
		return &Processor{err: fmt.Errorf("preprocess: %w", err)}
	}
	p := &Processor{cfg: cfg, out: make([]float32, 3*cfg.Width*cfg.Height)}
	for c := range 3 {
		for v := range 256 {
			// The processor's order of operations, rounding to float32 where numpy does: the
			// product in float64, the subtraction and division in float32.
			x := float32(v)
			if cfg.DoRescale {
				x = float32(float64(v) * cfg.Rescale)
			}
			if cfg.DoNormalize {
				x = (x - cfg.Mean[c]) / cfg.Std[c]
			}
			p.lut[c][v] = x
		}
	}
	return p
}

// Pixels fills and returns pixel_values for the frame, [3*Height*Width] float32 in CHW order
// (RGB). The slice is owned by the Processor and valid until the next call.
func (p *Processor) Pixels(width, height int, bgr []byte) ([]float32, error) {
	if p.err != nil {
		return nil, p.err
	}
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("preprocess: frame size %dx%d", width, height)
	}
	if len(bgr) != width*height*3 {
		return nil, fmt.Errorf("preprocess: %dx%d frame has %d bytes, want %d", width, height, len(bgr), width*height*3)
	}
	img := bgr
	if width != p.cfg.Width || height != p.cfg.Height {
		if !p.cfg.DoResize {
			return nil, fmt.Errorf("preprocess: %dx%d frame needs a resize to %dx%d, and do_resize is off",
				width, height, p.cfg.Width, p.cfg.Height)
		}
		img = p.resize(width, height, bgr)
	}
	plane := p.cfg.Width * p.cfg.Height
	r, g, b := p.out[:plane], p.out[plane:2*plane], p.out[2*plane:]
	for i := range plane {
		px := img[3*i : 3*i+3 : 3*i+3]
		r[i] = p.lut[0][px[2]]
		g[i] = p.lut[1][px[1]]
		b[i] = p.lut[2][px[0]]
	}
	return p.out, nil
}

// resize scales a packed BGR picture to the output size as Pillow's Image.resize does: a
// horizontal pass, then a vertical one, each rounding to 8 bits, and each skipped when its
// dimension does not change. The result is one of p's buffers.
func (p *Processor) resize(width, height int, bgr []byte) []byte {
	outW, outH := p.cfg.Width, p.cfg.Height
	if width != p.inW || height != p.inH {
		p.inW, p.inH = width, height
		p.horiz, p.vert = nil, nil
		if width != outW {
			p.horiz = newCoeffs(width, outW, p.cfg.Resample)
			p.wide = make([]byte, outW*height*3)
		}
		if height != outH {
			p.vert = newCoeffs(height, outH, p.cfg.Resample)
			p.resized = make([]byte, outW*outH*3)
			p.acc = make([]int32, outW*3)
		}
	}
	img := bgr
	if p.horiz != nil {
		p.horiz.horizontal(p.wide, img, width)
		img = p.wide
	}
	if p.vert != nil {
		p.vert.vertical(p.resized, img, p.acc)
		img = p.resized
	}
	return img
}
