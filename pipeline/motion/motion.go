// Package motion owns the motion gate: a MOG2 background model over a small grey copy of each
// frame decides which frames are worth running the detector on.
package motion

import (
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
)

// Config configures a Gate.
type Config struct {
	// Width is the width frames are scaled down to. It defaults to 320.
	Width int
	// History is the number of frames the background is modelled over. It defaults to 300.
	History int
	// VarThreshold is MOG2's squared Mahalanobis distance for foreground. It defaults to 16.
	VarThreshold float64
	// MinArea is the smallest moving region, as a fraction of the frame. It defaults to 0.001.
	MinArea float64
	// LearningRate is how much each frame updates the background, from 0 to 1; 0 uses OpenCV's
	// automatic rate, which settles at 1/History. Warm-up frames always learn at the automatic rate.
	LearningRate float64
	// Warmup is the number of frames learnt from before the gate closes. It defaults to 5.
	Warmup int
	// Mask lists areas whose movement never counts, such as a clock, a flag or trees in the wind.
	// It defaults to none.
	Mask []configs.Polygon
}

// Result is the gate's verdict on one frame.
type Result struct {
	// Moving is true when the detector should see the frame.
	Moving bool
	// Regions are the moving areas in frame pixels (none during warm-up).
	Regions []image.Rectangle
}

// Gate holds one source's background model; it is not safe for concurrent use.
type Gate struct {
	cfg    Config
	mog    mog2
	kernel gocv.Mat
	src    gocv.Mat
	small  gocv.Mat
	grey   gocv.Mat
	mask   gocv.Mat
	// keep is 255 where movement counts and 0 inside Config.Mask, at the working size; empty when
	// nothing is masked.
	keep gocv.Mat
	seen int
}

// New returns a gate with an empty background model.
func New(cfg Config) *Gate {
	if cfg.Width <= 0 {
		cfg.Width = 320
	}
	if cfg.History <= 0 {
		cfg.History = 300
	}
	if cfg.VarThreshold <= 0 {
		cfg.VarThreshold = 16
	}
	if cfg.MinArea <= 0 {
		cfg.MinArea = 0.001
	}
	return &Gate{
		cfg:    cfg,
		mog:    newMOG2(cfg.History, cfg.VarThreshold),
		kernel: gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(3, 3)),
		src:    gocv.NewMat(),
		small:  gocv.NewMat(),
		grey:   gocv.NewMat(),
		mask:   gocv.NewMat(),
		keep:   gocv.NewMat(),
	}
}

// masked blanks the masked areas of the foreground mask, building the keep mask for the working
// size w×h when it changes.
func (g *Gate) masked(w, h int) {
	if len(g.cfg.Mask) == 0 {
		return
	}
	if g.keep.Cols() != w || g.keep.Rows() != h {
		g.keep.Close()
		g.keep = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), h, w, gocv.MatTypeCV8U)
		polys := make([][]image.Point, len(g.cfg.Mask))
		for i, p := range g.cfg.Mask {
			for _, pt := range p {
				polys[i] = append(polys[i], image.Pt(int(pt.X*float64(w)+0.5), int(pt.Y*float64(h)+0.5)))
			}
		}
		pv := gocv.NewPointsVectorFromPoints(polys)
		gocv.FillPoly(&g.keep, pv, color.RGBA{})
		pv.Close()
	}
	gocv.BitwiseAnd(g.mask, g.keep, &g.mask)
}

// Apply learns f into the background model and says whether f shows motion.
func (g *Gate) Apply(f *ingest.Frame) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("motion frame %d: panic: %v", f.Seq, r)
		}
	}()
	if f.Width <= 0 || f.Height <= 0 || len(f.BGR) != f.Width*f.Height*3 {
		return Result{}, fmt.Errorf("motion frame %d: %dx%d with %d bytes is not packed BGR", f.Seq, f.Width, f.Height, len(f.BGR))
	}
	if g.src.Cols() != f.Width || g.src.Rows() != f.Height {
		g.src.Close()
		g.src = gocv.NewMatWithSize(f.Height, f.Width, gocv.MatTypeCV8UC3)
	}
	pix, err := g.src.DataPtrUint8()
	if err != nil {
		return Result{}, fmt.Errorf("motion frame %d: %w", f.Seq, err)
	}
	copy(pix, f.BGR)
	w := min(g.cfg.Width, f.Width)
	h := max(1, f.Height*w/f.Width)
	// Bilinear, not area averaging: on a 768-pixel frame it costs an eighth as much (0.13 ms against
	// 1.1 ms, more than MOG2 itself), and the blur below removes the aliasing it lets through.
	gocv.Resize(g.src, &g.small, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	gocv.CvtColor(g.small, &g.grey, gocv.ColorBGRToGray)
	// Blur so that sensor noise and compression blocks do not read as motion.
	gocv.GaussianBlur(g.grey, &g.grey, image.Pt(5, 5), 0, 0, gocv.BorderDefault)
	g.seen++
	rate := g.cfg.LearningRate
	if rate <= 0 || g.seen <= g.cfg.Warmup {
		rate = -1
	}
	g.mog.apply(g.grey, &g.mask, rate)
	if g.seen <= g.cfg.Warmup {
		return Result{Moving: true}, nil
	}
	g.masked(w, h)
	// Opening removes speckles; dilation joins the parts of one moving body.
	gocv.MorphologyEx(g.mask, &g.mask, gocv.MorphOpen, g.kernel)
	gocv.Dilate(g.mask, &g.mask, g.kernel)
	contours := gocv.FindContours(g.mask, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer contours.Close()
	minArea := g.cfg.MinArea * float64(w*h)
	sx, sy := float64(f.Width)/float64(w), float64(f.Height)/float64(h)
	for i := range contours.Size() {
		c := contours.At(i)
		if gocv.ContourArea(c) < minArea {
			continue
		}
		r := gocv.BoundingRect(c)
		res.Regions = append(res.Regions, image.Rect(
			int(float64(r.Min.X)*sx), int(float64(r.Min.Y)*sy),
			int(float64(r.Max.X)*sx+0.5), int(float64(r.Max.Y)*sy+0.5)))
	}
	res.Moving = len(res.Regions) > 0
	return res, nil
}

// Close frees the model; it is safe to call twice.
func (g *Gate) Close() error {
	for _, m := range []*gocv.Mat{&g.kernel, &g.src, &g.small, &g.grey, &g.mask, &g.keep} {
		m.Close()
	}
	g.mog.close()
	return nil
}
