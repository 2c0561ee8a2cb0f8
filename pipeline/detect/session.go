package detect

import (
	"errors"
	"fmt"
	"image"
	"log/slog"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/onnx"
)

// padValue is the grey Ultralytics fills the letterbox with (114/255).
const padValue = 114.0 / 255

// session is one ONNX Runtime session with its tensors and Mats, allocated once and reused: fresh
// allocations per frame cost tens of milliseconds on small machines.
type session struct {
	ort     *ort.AdvancedSession
	input   *ort.Tensor[float32]
	output  *ort.Tensor[float32]
	size    int
	src     gocv.Mat // frame pixels, reallocated when the frame size changes
	resized gocv.Mat
}

func (d *Detector) newSession(log *slog.Logger) (*session, error) {
	s := &session{size: d.size, src: gocv.NewMat(), resized: gocv.NewMat()}
	var err error
	if s.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 3, int64(d.size), int64(d.size))); err != nil {
		return nil, errors.Join(err, s.close())
	}
	shape := ort.NewShape(1, int64(4+len(d.classes)), int64(d.anchors))
	if s.output, err = ort.NewEmptyTensor[float32](shape); err != nil {
		return nil, errors.Join(err, s.close())
	}
	opts, err := onnx.SessionOptions(d.cfg.Threads, d.cfg.Provider, log)
	if err != nil {
		return nil, errors.Join(err, s.close())
	}
	defer opts.Destroy()
	s.ort, err = ort.NewAdvancedSession(d.cfg.Model, []string{"images"}, []string{"output0"},
		[]ort.Value{s.input}, []ort.Value{s.output}, opts)
	if err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// load letterboxes f into the input tensor: RGB, planar, scaled to 0..1, padded with grey.
func (s *session) load(f *ingest.Frame) (letterbox, error) {
	if f.Width <= 0 || f.Height <= 0 || len(f.BGR) != f.Width*f.Height*3 {
		return letterbox{}, fmt.Errorf("frame %dx%d with %d bytes is not packed BGR", f.Width, f.Height, len(f.BGR))
	}
	if s.src.Cols() != f.Width || s.src.Rows() != f.Height {
		s.src.Close()
		s.src = gocv.NewMatWithSize(f.Height, f.Width, gocv.MatTypeCV8UC3)
	}
	pix, err := s.src.DataPtrUint8()
	if err != nil {
		return letterbox{}, err
	}
	copy(pix, f.BGR)
	lb := newLetterbox(f.Width, f.Height, s.size)
	gocv.Resize(s.src, &s.resized, image.Pt(lb.w, lb.h), 0, 0, gocv.InterpolationLinear)
	rgb, err := s.resized.DataPtrUint8()
	if err != nil {
		return letterbox{}, err
	}
	plane := s.size * s.size
	in := s.input.GetData()
	r, g, b := in[:plane], in[plane:2*plane], in[2*plane:]
	for y := range s.size {
		row := y * s.size
		iy := y - lb.padY
		for x := range s.size {
			ix := x - lb.padX
			if iy < 0 || iy >= lb.h || ix < 0 || ix >= lb.w {
				r[row+x], g[row+x], b[row+x] = padValue, padValue, padValue
				continue
			}
			p := (iy*lb.w + ix) * 3
			b[row+x] = float32(rgb[p]) / 255
			g[row+x] = float32(rgb[p+1]) / 255
			r[row+x] = float32(rgb[p+2]) / 255
		}
	}
	return lb, nil
}

func (s *session) run() error { return s.ort.Run() }

func (s *session) close() error {
	var errs []error
	if s.ort != nil {
		errs = append(errs, s.ort.Destroy())
	}
	if s.input != nil {
		errs = append(errs, s.input.Destroy())
	}
	if s.output != nil {
		errs = append(errs, s.output.Destroy())
	}
	errs = append(errs, s.src.Close(), s.resized.Close())
	*s = session{}
	return errors.Join(errs...)
}
