// Package detect runs a YOLOv8 ONNX detector on frames: letterbox, inference on a pool of
// ONNX Runtime sessions, decoding of the [1, 4+classes, anchors] output and class-wise NMS.
package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vigilcam/vigil/ingest"
)

// Config configures a Detector.
type Config struct {
	// Model is the path of a YOLOv8 ONNX export (fp32 or quantized) with input "images" and
	// output "output0".
	Model string
	// Sessions is the number of sessions run in parallel. It defaults to 1.
	Sessions int
	// Threads is the intra-op thread count per session. It defaults to 1.
	Threads int
	// Provider is the execution provider: cpu, cuda or tensorrt. It defaults to "cpu".
	Provider string
	// Confidence is the minimum class score kept. It defaults to 0.35.
	Confidence float32
	// IoU is the overlap above which NMS drops the weaker box of one class. It defaults to 0.5.
	IoU float32
	// Classes are the class names kept; empty keeps all. A name the model lacks is an error.
	Classes []string
	// ClassConfidence overrides Confidence for some classes, by name: a rarely confused class can
	// be kept at a lower score, an often hallucinated one asked for more. A name the model lacks
	// is an error. It defaults to none.
	ClassConfidence map[string]float32
}

// Detection is one object found in a frame, in frame pixel coordinates.
type Detection struct {
	Class          string
	ClassID        int
	Score          float32
	X1, Y1, X2, Y2 float32
}

// Detector runs a model on frames; it is safe for concurrent use, one call per session at a time.
type Detector struct {
	name    string
	classes []string
	// minScore is, by class id, the score a detection of that class needs; above 1 for a class
	// not kept.
	minScore []float32
	size     int // square input side, 640 for standard exports
	anchors  int
	cfg      Config
	sessions chan *session
	all      []*session
}

// New loads the model into cfg.Sessions sessions. onnx.Init must have been called.
func New(cfg Config, log *slog.Logger) (*Detector, error) {
	if cfg.Sessions < 1 {
		cfg.Sessions = 1
	}
	if cfg.Threads < 1 {
		cfg.Threads = 1
	}
	if cfg.Provider == "" {
		cfg.Provider = "cpu"
	}
	if cfg.Confidence <= 0 {
		cfg.Confidence = 0.35
	}
	if cfg.IoU <= 0 {
		cfg.IoU = 0.5
	}
	d := &Detector{name: filepath.Base(cfg.Model), cfg: cfg}
	if err := d.inspect(); err != nil {
		return nil, fmt.Errorf("detector %s: %w", cfg.Model, err)
	}
	d.sessions = make(chan *session, cfg.Sessions)
	for range cfg.Sessions {
		s, err := d.newSession(log)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("detector %s: %w", cfg.Model, err), d.Close())
		}
		d.all = append(d.all, s)
		d.sessions <- s
	}
	return d, nil
}

// inspect reads the input size, anchor count and class names from the model file.
func (d *Detector) inspect() error {
	ins, outs, err := ort.GetInputOutputInfo(d.cfg.Model)
	if err != nil {
		return err
	}
	if len(ins) != 1 || len(outs) != 1 || len(ins[0].Dimensions) != 4 || len(outs[0].Dimensions) != 3 {
		return fmt.Errorf("not a YOLOv8 detection export: inputs %v, outputs %v", ins, outs)
	}
	in, out := ins[0].Dimensions, outs[0].Dimensions
	d.size = 640
	if in[2] > 0 {
		d.size = int(in[2])
	}
	if in[3] > 0 && int(in[3]) != d.size {
		return fmt.Errorf("input %v is not square", in)
	}
	rows := int(out[1])
	d.anchors = int(out[2])
	if d.anchors <= 0 {
		// Dynamic exports still use strides 8, 16 and 32 over the input.
		s := d.size
		d.anchors = (s/8)*(s/8) + (s/16)*(s/16) + (s/32)*(s/32)
	}
	meta, err := ort.GetModelMetadata(d.cfg.Model)
	if err != nil {
		return err
	}
	defer meta.Destroy()
	names, _, err := meta.LookupCustomMetadataMap("names")
	if err != nil {
		return err
	}
	d.classes = parseNames(names)
	if rows <= 4 {
		rows = 4 + len(d.classes)
	}
	if len(d.classes) == 0 || rows != 4+len(d.classes) {
		return fmt.Errorf("output has %d rows but metadata names %d classes", rows, len(d.classes))
	}
	ids := make(map[string]int, len(d.classes))
	for id, name := range d.classes {
		ids[name] = id
	}
	lookup := func(name string) (int, error) {
		id, ok := ids[name]
		if !ok {
			return 0, fmt.Errorf("class %q is not one of the model's %d classes", name, len(d.classes))
		}
		return id, nil
	}
	const never = 2 // no sigmoided score reaches it
	d.minScore = make([]float32, len(d.classes))
	for id := range d.minScore {
		d.minScore[id] = d.cfg.Confidence
		if len(d.cfg.Classes) > 0 {
			d.minScore[id] = never
		}
	}
	for _, name := range d.cfg.Classes {
		id, err := lookup(name)
		if err != nil {
			return err
		}
		d.minScore[id] = d.cfg.Confidence
	}
	for name, conf := range d.cfg.ClassConfidence {
		id, err := lookup(name)
		if err != nil {
			return err
		}
		if d.minScore[id] != never {
			d.minScore[id] = conf
		}
	}
	return nil
}

var namePattern = regexp.MustCompile(`(\d+)\s*:\s*(?:'([^']*)'|"([^"]*)")`)

// parseNames reads Ultralytics' "names" metadata, a Python dict literal {0: 'person', ...}.
func parseNames(s string) []string {
	byID := map[int]string{}
	maxID := -1
	for _, m := range namePattern.FindAllStringSubmatch(s, -1) {
		id, err := strconv.Atoi(m[1])
		if err != nil || id > 10000 {
			continue
		}
		byID[id] = m[2] + m[3]
		maxID = max(maxID, id)
	}
	if maxID < 0 || len(byID) != maxID+1 {
		return nil
	}
	names := make([]string, maxID+1)
	for id, n := range byID {
		names[id] = n
	}
	return names
}

// Name is the model's file name, recorded with each moment.
func (d *Detector) Name() string { return d.name }

// Sessions is the number of frames the detector can work on at once.
func (d *Detector) Sessions() int { return d.cfg.Sessions }

// Classes returns the class names in id order.
func (d *Detector) Classes() []string { return d.classes }

// Detect finds objects in f. It waits for a free session or for ctx.
func (d *Detector) Detect(ctx context.Context, f *ingest.Frame) (dets []Detection, err error) {
	var s *session
	select {
	case s = <-d.sessions:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { d.sessions <- s }()
	defer func() {
		// A panic inside cgo helpers must cost one frame, not the process.
		if r := recover(); r != nil {
			err = fmt.Errorf("detect frame %d: panic: %v", f.Seq, r)
		}
	}()
	lb, err := s.load(f)
	if err != nil {
		return nil, fmt.Errorf("detect frame %d: %w", f.Seq, err)
	}
	if err := s.run(); err != nil {
		return nil, fmt.Errorf("detect frame %d: run: %w", f.Seq, err)
	}
	return decode(s.output.GetData(), d.anchors, d.classes, d.minScore, lb, d.cfg.IoU), nil
}

// Close releases every session; it is safe to call twice.
func (d *Detector) Close() error {
	var errs []error
	for _, s := range d.all {
		errs = append(errs, s.close())
	}
	d.all = nil
	return errors.Join(errs...)
}

// letterbox maps between frame pixels and the square model input.
type letterbox struct {
	scale      float32
	padX, padY int
	w, h       int // scaled picture size inside the input
}

func newLetterbox(frameW, frameH, size int) letterbox {
	scale := min(float32(size)/float32(frameW), float32(size)/float32(frameH))
	w := min(size, int(float32(frameW)*scale+0.5))
	h := min(size, int(float32(frameH)*scale+0.5))
	return letterbox{scale: scale, w: w, h: h, padX: (size - w) / 2, padY: (size - h) / 2}
}

// toFrame maps an input-space coordinate back to the frame.
func (lb letterbox) toFrame(x, y float32) (float32, float32) {
	return (x - float32(lb.padX)) / lb.scale, (y - float32(lb.padY)) / lb.scale
}

// decode turns the model output (rows 0-3 cx, cy, w, h; then one sigmoided score row per class,
// each row anchors long) into frame-space detections after class-wise NMS, best first. Each
// anchor takes its highest-scoring class among those whose score reaches the class's minimum.
func decode(out []float32, anchors int, classes []string, minScore []float32, lb letterbox, iou float32) []Detection {
	var cands []Detection
	fw, fh := float32(lb.w)/lb.scale, float32(lb.h)/lb.scale
	for i := range anchors {
		best, bestScore := -1, float32(0)
		for c := range classes {
			if s := out[(4+c)*anchors+i]; s >= minScore[c] && s > bestScore {
				best, bestScore = c, s
			}
		}
		if best < 0 {
			continue
		}
		cx, cy := out[i], out[anchors+i]
		w, h := out[2*anchors+i], out[3*anchors+i]
		x1, y1 := lb.toFrame(cx-w/2, cy-h/2)
		x2, y2 := lb.toFrame(cx+w/2, cy+h/2)
		d := Detection{
			Class: classes[best], ClassID: best, Score: bestScore,
			X1: clamp(x1, fw), Y1: clamp(y1, fh), X2: clamp(x2, fw), Y2: clamp(y2, fh),
		}
		if d.X2 > d.X1 && d.Y2 > d.Y1 {
			cands = append(cands, d)
		}
	}
	return nms(cands, iou)
}

func clamp(v, hi float32) float32 { return max(0, min(v, hi)) }

// nms keeps, per class, each box that does not overlap a better one by more than iou.
func nms(cands []Detection, iou float32) []Detection {
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].Score > cands[b].Score })
	var kept []Detection
	for _, c := range cands {
		ok := true
		for _, k := range kept {
			if k.ClassID == c.ClassID && overlap(k, c) > iou {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, c)
		}
	}
	return kept
}

// overlap is the intersection over union of two boxes.
func overlap(a, b Detection) float32 {
	iw := min(a.X2, b.X2) - max(a.X1, b.X1)
	ih := min(a.Y2, b.Y2) - max(a.Y1, b.Y1)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := (a.X2-a.X1)*(a.Y2-a.Y1) + (b.X2-b.X1)*(b.Y2-b.Y1) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}
