package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/embed"
	"github.com/vigilcam/vigil/pipeline/motion"
	"github.com/vigilcam/vigil/pipeline/onnx"
	"github.com/vigilcam/vigil/sink/store"
)

// verdicts of a check, worst last.
const (
	ok = iota
	warn
	fail
)

type checkup struct{ worst int }

func (c *checkup) report(level int, what, format string, args ...any) {
	c.worst = max(c.worst, level)
	fmt.Printf("  %-5s %-11s %s\n", [...]string{"ok", "warn", "FAIL"}[level], what, fmt.Sprintf(format, args...))
}

func doctor(ctx context.Context, configPath string, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("doctor takes no arguments")}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	c := &checkup{}
	fmt.Println("vigil doctor")

	c.opencv()
	c.onnx(a)
	c.embedder(ctx, a)
	c.captioner(ctx, a)
	c.database(ctx, a)
	c.nats(ctx, a)
	c.disk(a.cfg.DataDir)

	switch c.worst {
	case fail:
		return fmt.Errorf("vigil cannot run until the failures above are fixed (deploy/setup.sh installs what is missing)")
	case warn:
		fmt.Println("vigil can run; the warnings above say what works in a reduced way")
	default:
		fmt.Println("everything vigil needs is in place")
	}
	return nil
}

func (c *checkup) opencv() {
	g := motion.New(motion.Config{Warmup: 1})
	defer g.Close()
	f := &ingest.Frame{Width: 64, Height: 48, BGR: make([]byte, 64*48*3)}
	if _, err := g.Apply(f); err != nil {
		c.report(fail, "opencv", "OpenCV %s loaded, but the MOG2 motion gate failed: %v", gocv.OpenCVVersion(), err)
		return
	}
	c.report(ok, "opencv", "OpenCV %s: the MOG2 motion gate works", gocv.OpenCVVersion())
}

func (c *checkup) onnx(a *app) {
	lib, err := a.loadONNX()
	if err != nil {
		c.report(fail, "onnxruntime", "%v", err)
		c.report(fail, "detector", "cannot load %s without ONNX Runtime: nothing can be indexed", a.cfg.YOLOModel())
		return
	}
	c.report(ok, "onnxruntime", "ONNX Runtime %s from %s (provider %s)", onnx.Version(), lib, a.cfg.ONNX.Provider)
	a.cfg.Pipeline.Detect.Sessions = 1
	if err := a.openDetector(); err != nil {
		c.report(fail, "detector", "%v: nothing can be indexed", err)
		return
	}
	f := &ingest.Frame{Width: 640, Height: 480, BGR: make([]byte, 640*480*3)}
	start := time.Now()
	if _, err := a.det.Detect(context.Background(), f); err != nil {
		c.report(fail, "detector", "%s loaded but failed on a frame: %v", a.cfg.YOLOModel(), err)
		return
	}
	c.report(ok, "detector", "%s: %d classes, %s for one frame", a.cfg.YOLOModel(), len(a.det.Classes()),
		time.Since(start).Round(time.Millisecond))
}

// embedder loads the sentence-embedding model, when one is installed, and embeds one caption.
// Without it vigil still runs: moments are stored without an embedding.
func (c *checkup) embedder(ctx context.Context, a *app) {
	const degraded = "moments get no embedding and search is full text only"
	model := a.cfg.EmbedderModel()
	if _, err := os.Stat(model); err != nil {
		c.report(warn, "embedder", "all-MiniLM-L6-v2 is not installed (looked for %s): %s", model, degraded)
		return
	}
	if onnx.Version() == "" {
		c.report(warn, "embedder", "cannot load %s without ONNX Runtime: %s", model, degraded)
		return
	}
	e, err := embed.New(embed.Config{Model: model, Tokenizer: a.cfg.EmbedderTokenizer(), Provider: a.cfg.ONNX.Provider}, a.log)
	if err != nil {
		c.report(warn, "embedder", "%v: %s", err, degraded)
		return
	}
	defer e.Close()
	start := time.Now()
	if _, err := e.Embed(ctx, []string{"a person walking a dog near the gate"}); err != nil {
		c.report(warn, "embedder", "%s loaded but failed on a sentence: %v: %s", model, err, degraded)
		return
	}
	c.report(ok, "embedder", "%s: %d-d embeddings, %s for one sentence", model, embed.Dim,
		time.Since(start).Round(time.Millisecond))
}

// captioner loads Florence-2, when it is installed, and captions one frame. Without it vigil still
// runs: captions are composed from the detected objects.
func (c *checkup) captioner(ctx context.Context, a *app) {
	const degraded = "captions are composed from the detected objects"
	dir := a.cfg.FlorenceDir()
	switch {
	case !a.cfg.Pipeline.Captions.Enabled:
		c.report(warn, "captioner", "turned off (pipeline.captions.enabled): %s", degraded)
		return
	case !configs.FlorenceInstalled(dir):
		c.report(warn, "captioner", "Florence-2 is not installed (looked for %s; vigil models fetch florence): %s", filepath.Join(dir, "onnx"), degraded)
		return
	case onnx.Version() == "":
		c.report(warn, "captioner", "cannot load %s without ONNX Runtime: %s", dir, degraded)
		return
	}
	cp, err := a.captioner(dir)
	if err != nil {
		c.report(warn, "captioner", "%v: %s", err, degraded)
		return
	}
	defer cp.Close()
	const w, h = 640, 360
	start := time.Now()
	text, err := cp.Caption(ctx, w, h, make([]byte, w*h*3))
	if err != nil {
		c.report(warn, "captioner", "%s loaded but failed on a frame: %v: %s", cp.Name(), err, degraded)
		return
	}
	c.report(ok, "captioner", "%s: %s for one frame (a black frame: %q)", cp.Name(), time.Since(start).Round(time.Millisecond), text)
}

func (c *checkup) database(ctx context.Context, a *app) {
	where := "external " + redactURL(a.cfg.Database.URL)
	if a.cfg.Database.URL == "" {
		where = "private cluster in " + filepath.Join(a.cfg.DataDir, "pg")
	}
	url, err := a.databaseURL(ctx)
	if err != nil {
		c.report(fail, "postgres", "%s: %v", where, err)
		return
	}
	server, vector, err := store.Probe(ctx, url)
	if err != nil {
		c.report(fail, "postgres", "%s: %v", where, err)
		return
	}
	c.report(ok, "postgres", "PostgreSQL %s with pgvector %s (%s)", server, vector, where)
}

func (c *checkup) nats(ctx context.Context, a *app) {
	if err := a.openBus(ctx); err != nil {
		c.report(fail, "nats", "%v", err)
		return
	}
	how := "external"
	if a.bus.Embedded() {
		how = "embedded, storing in " + filepath.Join(a.cfg.DataDir, "nats")
	}
	c.report(ok, "nats", "JetStream at %s (%s)", a.bus.ServerURL(), how)
}

func (c *checkup) disk(dir string) {
	// The data folder may not exist yet: measure the nearest folder that does.
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		c.report(warn, "disk", "cannot measure free space in %s: %v", dir, err)
		return
	}
	free := float64(st.Bavail) * float64(st.Bsize) / (1 << 30)
	switch {
	case free < 0.2:
		c.report(fail, "disk", "%.2f GiB free in %s: too little for the database and bus", free, dir)
	case free < 2:
		c.report(warn, "disk", "%.1f GiB free in %s: moments and uploads will fill it soon", free, dir)
	default:
		c.report(ok, "disk", "%.0f GiB free in %s", free, dir)
	}
}

// redactURL hides a URL's password, or the whole URL when it does not parse.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
