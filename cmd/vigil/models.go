package main

// This file owns `vigil models`: fetching the model weights into the data folder, verifying what
// is installed there, and listing it.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/pipeline/embed"
	"github.com/vigilcam/vigil/pipeline/models"
)

const modelsUsage = `usage: vigil models fetch [--yolo P] [--embedder P] [--precision P] [--unverified] [--mirror URL] [yolo|embedder|florence...]
       vigil models verify
       vigil models list

fetch downloads the models named, or all three, into DATA_DIR/models, where vigil finds them
without configuration: yolo is the YOLOv8n detector, embedder the all-MiniLM-L6-v2 caption
embedder, florence the Florence-2-base captioner. A file takes its final name only after its size
and checksum match the ones vigil records; files already installed that match are skipped, and a
download that was interrupted resumes where it stopped when fetch runs again.

Florence-2's q4 and q4f16 files have known checksums. Its fp16, quantized and fp32 files have
none, so nothing can tell a damaged or changed file from the right one: fetch refuses them unless
--unverified is given.

With --mirror (or $VIGIL_MODELS_MIRROR) every file comes from URL/FOLDER/PATH instead, the layout
of DATA_DIR/models (URL/yolov8n/yolov8n.onnx): a site without internet access serves a copy of a
models folder from its own HTTP server.

verify checks every installed file against the recorded size and checksum, then runs each
installed model once and reports the time; it exits 1 when a file or a run fails.

list shows each model's precisions, which are installed and how they are checked.
`

func modelsCmd(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, modelsUsage)
		return usageError{errors.New("missing subcommand: fetch, verify or list")}
	}
	switch args[0] {
	case "fetch":
		return fetchModels(ctx, configPath, args[1:])
	case "verify":
		return verifyModels(ctx, configPath, args[1:])
	case "list":
		return listModels(configPath, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, modelsUsage)
		return flag.ErrHelp
	}
	return usageError{fmt.Errorf("unknown subcommand %q: want fetch, verify or list", args[0])}
}

func modelsFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("models "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), modelsUsage+"\n")
		fs.PrintDefaults()
	}
	return fs
}

// precisionFlag names the flag choosing each model's precision.
var precisionFlag = map[string]string{"yolo": "yolo", "embedder": "embedder", "florence": "precision"}

func fetchModels(ctx context.Context, configPath string, args []string) error {
	fs := modelsFlags("fetch")
	precision := map[string]*string{}
	for _, m := range models.Catalog() {
		names := m.PrecisionNames()
		precision[m.Name] = fs.String(precisionFlag[m.Name], names[0],
			fmt.Sprintf("%s precision: %s", m.Title, strings.Join(names, ", ")))
	}
	unverified := fs.Bool("unverified", false, "also fetch files whose checksum is not known (Florence-2 fp16, quantized, fp32)")
	mirror := fs.String("mirror", os.Getenv("VIGIL_MODELS_MIRROR"),
		"fetch every file from `URL`/FOLDER/PATH instead of its public sources (default $VIGIL_MODELS_MIRROR)")
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		for _, m := range models.Catalog() {
			names = append(names, m.Name)
		}
	}
	if *mirror != "" {
		if u, err := url.Parse(*mirror); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError{fmt.Errorf("--mirror %q is not an http:// or https:// URL", *mirror)}
		}
	}
	type job struct {
		model     models.Model
		precision string
		files     []models.File
	}
	var jobs []job
	for _, name := range names {
		m, err := models.Lookup(name)
		if err != nil {
			return usageError{err}
		}
		files, err := m.Files(*precision[name])
		if err != nil {
			return usageError{fmt.Errorf("--%s: %w", precisionFlag[name], err)}
		}
		if !*unverified && slices.ContainsFunc(files, func(f models.File) bool { return f.Method() == models.Unverified }) {
			return usageError{fmt.Errorf("%s %s: no checksum is known for its files, so a damaged or changed download "+
				"would go unnoticed; choose a precision with checksums, or add --unverified to fetch it anyway", m.Title, *precision[name])}
		}
		jobs = append(jobs, job{m, *precision[name], files})
	}
	var unused []string
	fs.Visit(func(f *flag.Flag) {
		for name, flagName := range precisionFlag {
			if f.Name == flagName && !slices.Contains(names, name) {
				unused = append(unused, fmt.Sprintf("--%s applies to %s, which is not being fetched", flagName, name))
			}
		}
	})
	if len(unused) > 0 {
		return usageError{errors.New(strings.Join(unused, "; "))}
	}

	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	dir := filepath.Join(a.cfg.DataDir, "models")
	fetcher := models.New(models.Config{Dir: dir, Mirror: *mirror, Progress: os.Stderr})
	var errs []error
	for _, j := range jobs {
		into := filepath.Join(dir, j.model.Dir)
		fmt.Fprintf(os.Stderr, "%s %s into %s\n", j.model.Title, j.precision, into)
		if err := fetcher.Fetch(ctx, j.files); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Printf("%s %s is installed in %s\n", j.model.Title, j.precision, into)
		if c := modelCheckOf(j.model.Name); c.path != nil {
			fmt.Printf("  vigil loads %s\n", c.path(a.cfg))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w\nrun the same fetch again to retry: finished files are kept and partial ones resume", errors.Join(errs...))
	}
	return nil
}

// modelCheck is what `models verify` does for one model of the catalog besides checking its
// files: run the model once.
type modelCheck struct {
	name string // the catalog's name of the model
	// path returns the model file the configuration resolves to.
	path func(configs.Config) string
	// run loads the model at path, runs it once and says what it did.
	run func(ctx context.Context, a *app, path string) (string, error)
}

// modelChecks has an entry for every model of the catalog.
var modelChecks = []modelCheck{
	{"yolo", configs.Config.YOLOModel, runDetector},
	{"embedder", configs.Config.EmbedderModel, runEmbedder},
	{"florence", configs.Config.FlorenceDir, runCaptioner},
}

func modelCheckOf(name string) modelCheck {
	for _, c := range modelChecks {
		if c.name == name {
			return c
		}
	}
	return modelCheck{name: name}
}

func verifyModels(ctx context.Context, configPath string, args []string) error {
	fs := modelsFlags("verify")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{errors.New("verify takes no arguments")}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	dir := filepath.Join(a.cfg.DataDir, "models")
	say := func(label, format string, args ...any) {
		fmt.Printf("  %-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	failures := 0
	for _, m := range models.Catalog() {
		fmt.Printf("%s (%s) in %s\n", m.Title, m.Name, filepath.Join(dir, m.Dir))
		files := models.Verify(dir, m)
		if len(files) == 0 {
			say("-", "no files: vigil models fetch %s installs them", m.Name)
		}
		bad := 0
		for _, s := range files {
			switch {
			case s.Partial:
				say("partial", "%s: %s downloaded; vigil models fetch %s resumes it", s.File.Path, models.FormatSize(s.Size), m.Name)
			case s.Err != nil:
				bad++
				say("FAIL", "%v; vigil models fetch %s downloads it again", s.Err, m.Name)
			case s.File.Method() == models.Unverified:
				say("unverified", "%s  %s: no checksum is known", s.File.Path, models.FormatSize(s.Size))
			default:
				say("ok", "%s  %s: %s matches", s.File.Path, models.FormatSize(s.Size), s.File.Method())
			}
		}
		failures += bad
		c := modelCheckOf(m.Name)
		path := c.path(a.cfg)
		if _, err := os.Stat(path); err != nil {
			say("-", "not run: no model at %s", path)
			continue
		}
		if bad > 0 {
			say("-", "not run: its files do not match")
			continue
		}
		did, err := c.run(ctx, a, path)
		if err != nil {
			failures++
			say("FAIL", "run %s: %v", path, err)
			continue
		}
		say("ok", "run %s: %s", path, did)
	}
	if failures > 0 {
		return fmt.Errorf("%d check(s) failed", failures)
	}
	return nil
}

// runDetector detects objects in one grey 640×360 frame, the size of a common camera substream.
func runDetector(ctx context.Context, a *app, path string) (string, error) {
	a.cfg.Models.YOLO = path
	a.cfg.Pipeline.Detect.Sessions = 1
	start := time.Now()
	if err := a.openDetector(); err != nil {
		return "", err
	}
	loaded := time.Since(start)
	f := &ingest.Frame{Width: 640, Height: 360, BGR: bytes.Repeat([]byte{114}, 640*360*3)}
	start = time.Now()
	if _, err := a.det.Detect(ctx, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d classes; loaded in %s, one 640×360 frame in %s", len(a.det.Classes()),
		loaded.Round(100*time.Microsecond), time.Since(start).Round(100*time.Microsecond)), nil
}

// runEmbedder embeds one caption.
func runEmbedder(ctx context.Context, a *app, path string) (string, error) {
	if _, err := a.loadONNX(); err != nil {
		return "", err
	}
	start := time.Now()
	e, err := embed.New(embed.Config{Model: path, Tokenizer: a.cfg.EmbedderTokenizer(), Provider: a.cfg.ONNX.Provider}, a.log)
	if err != nil {
		return "", err
	}
	defer e.Close()
	loaded := time.Since(start)
	start = time.Now()
	if _, err := e.Embed(ctx, []string{"a person walks a dog past a parked car"}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d-d embeddings; loaded in %s, one sentence in %s", embed.Dim,
		loaded.Round(100*time.Microsecond), time.Since(start).Round(100*time.Microsecond)), nil
}

// runCaptioner captions one grey 640×360 frame with the configured precision, task and beams.
func runCaptioner(ctx context.Context, a *app, dir string) (string, error) {
	if _, err := a.loadONNX(); err != nil {
		return "", err
	}
	start := time.Now()
	c, err := a.captioner(dir)
	if err != nil {
		return "", err
	}
	defer c.Close()
	loaded := time.Since(start)
	start = time.Now()
	text, err := c.Caption(ctx, 640, 360, bytes.Repeat([]byte{114}, 640*360*3))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s; loaded in %s, one 640×360 frame in %s: %q", c.Name(),
		loaded.Round(100*time.Microsecond), time.Since(start).Round(100*time.Microsecond), text), nil
}

func listModels(configPath string, args []string) error {
	fs := modelsFlags("list")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{errors.New("list takes no arguments")}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	dir := filepath.Join(a.cfg.DataDir, "models")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "MODEL\tPRECISION\tCHECKSUM\tINSTALLED")
	for _, m := range models.Catalog() {
		for i, p := range m.Precisions {
			files, _ := m.Files(p.Name)
			present, size := 0, int64(0)
			for _, f := range files {
				if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path))); err == nil {
					present++
					size += st.Size()
				}
			}
			installed := "no"
			switch {
			case present == len(files):
				installed = "yes, " + models.FormatSize(size)
			case present > 0:
				installed = fmt.Sprintf("%d of %d files, %s", present, len(files), models.FormatSize(size))
			}
			name := p.Name
			if i == 0 {
				name += " (default)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.Name, name, weakest(p.Files), installed)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("\nin %s; vigil models verify checks their content\n", dir)
	return nil
}

// weakest returns the least thorough check among the files.
func weakest(files []models.File) models.Method {
	order := []models.Method{models.SHA256, models.GitBlob, models.Unverified}
	i := 0
	for _, f := range files {
		i = max(i, slices.Index(order, f.Method()))
	}
	return order[i]
}
