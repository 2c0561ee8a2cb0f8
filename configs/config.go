// Package configs owns vigil's configuration: defaults in code, an optional YAML file, VIGIL_*
// environment overrides, and validation that reports every problem at once.
package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a vigil process. Field comments give the defaults, which
// configs/vigil.yml repeats.
type Config struct {
	// DataDir holds the embedded PostgreSQL cluster, the embedded NATS store and installed models.
	// It defaults to ".vigil".
	DataDir string `yaml:"data_dir"`
	// Tenant is the tenant CLI commands act for when --tenant is not given, and that of API requests
	// without a token and of the bootstrap token. It defaults to "default".
	Tenant   string   `yaml:"tenant"`
	Log      Log      `yaml:"log"`
	HTTP     HTTP     `yaml:"http"`
	Auth     Auth     `yaml:"auth"`
	Database Database `yaml:"database"`
	NATS     NATS     `yaml:"nats"`
	ONNX     ONNX     `yaml:"onnx"`
	Models   Models   `yaml:"models"`
	Pipeline Pipeline `yaml:"pipeline"`
	Sink     Sink     `yaml:"sink"`
	Index    Index    `yaml:"index"`
	Search   Search   `yaml:"search"`
	Uploads  Uploads  `yaml:"uploads"`
	// Cameras are declared here besides those added through the API or `vigil cameras add`.
	// It defaults to none.
	Cameras []Camera `yaml:"cameras"`
}

// Log configures log/slog output on stderr.
type Log struct {
	// Level is debug, info, warn or error. It defaults to "info".
	Level string `yaml:"level"`
	// Format is text or json. It defaults to "text".
	Format string `yaml:"format"`
}

// HTTP configures the API server.
type HTTP struct {
	// Addr is the listen address of the API, search page and /metrics. It defaults to "127.0.0.1:8420".
	Addr string `yaml:"addr"`
}

// Auth configures who may use the API. A request names its token as "Authorization: Bearer
// TOKEN"; tokens are made with `vigil tokens create` or POST /api/v1/tokens.
type Auth struct {
	// Required refuses API requests that carry no token. When false, such a request addressed to
	// localhost or a loopback address acts as an admin of the configured tenant, which is allowed
	// only while http.addr is on loopback. It defaults to false.
	Required bool `yaml:"required"`
	// BootstrapToken is a secret of at least 32 characters that acts as an admin of the configured
	// tenant and may also add tenants and make tokens for any tenant; empty disables it. Set it
	// from the environment (VIGIL_AUTH_BOOTSTRAP_TOKEN) rather than in a file. It defaults to "".
	BootstrapToken string `yaml:"bootstrap_token"`
}

// minBootstrapToken is the shortest bootstrap token, in characters.
const minBootstrapToken = 32

// String shows the settings with the bootstrap token redacted.
func (a Auth) String() string {
	token := ""
	if a.BootstrapToken != "" {
		token = "xxxxx"
	}
	return fmt.Sprintf("{Required:%t BootstrapToken:%s}", a.Required, token)
}

// Database configures PostgreSQL.
type Database struct {
	// URL of an external PostgreSQL with pgvector. Empty runs a private cluster under DataDir.
	// It defaults to "".
	URL string `yaml:"url"`
	// MaxConns caps the connection pool. It defaults to 8.
	MaxConns int `yaml:"max_conns"`
	// Embedded configures the private cluster used when URL is empty.
	Embedded EmbeddedDatabase `yaml:"embedded"`
}

// EmbeddedDatabase configures the private PostgreSQL cluster.
type EmbeddedDatabase struct {
	// Port names the cluster's unix socket; the cluster listens on no TCP address. It defaults to 5433.
	Port int `yaml:"port"`
	// BinDir holds initdb and pg_ctl. Empty picks the newest /usr/lib/postgresql/*/bin.
	// It defaults to "".
	BinDir string `yaml:"bin_dir"`
}

// NATS configures the message bus.
type NATS struct {
	// URL of an external NATS server or cluster with JetStream. Empty embeds a server in the process.
	// It defaults to "".
	URL string `yaml:"url"`
	// Replicas of each JetStream stream; raise it on a clustered external NATS. It defaults to 1.
	Replicas int `yaml:"replicas"`
	// Embedded configures the in-process server used when URL is empty.
	Embedded EmbeddedNATS `yaml:"embedded"`
}

// EmbeddedNATS configures the in-process NATS server.
type EmbeddedNATS struct {
	// Listen is where the embedded server accepts other local vigil processes; a process that finds
	// a server already listening there uses it instead of starting its own. It defaults to
	// "127.0.0.1:4223".
	Listen string `yaml:"listen"`
}

// ONNX configures ONNX Runtime.
type ONNX struct {
	// Library is the path of libonnxruntime.so. Empty searches .deps/onnxruntime (as installed by
	// deploy/setup.sh) upwards from the working directory and the executable, then the system
	// library path. It defaults to "".
	Library string `yaml:"library"`
	// Provider is the execution provider: cpu, cuda or tensorrt; an unavailable one falls back to
	// cpu with a warning. It defaults to "cpu".
	Provider string `yaml:"provider"`
}

// Models locates model files.
type Models struct {
	// YOLO is the YOLOv8 ONNX detector. Empty uses DataDir/models/yolov8n/yolov8n.onnx, else
	// DataDir/models/yolov8n/yolov8n_quantized.onnx (where `vigil models fetch` puts them), else
	// the int8 copy in the shared folder ($VIGIL_SHARED_DIR or ../shared). It defaults to "".
	YOLO string `yaml:"yolo"`
	// Embedder is the all-MiniLM-L6-v2 ONNX export (onnx/model.onnx or onnx/model_quantized.onnx,
	// with tokenizer.json in the folder above). Empty uses
	// DataDir/models/all-MiniLM-L6-v2/onnx/model.onnx, else onnx/model_quantized.onnx there (where
	// `vigil models fetch` puts them), else the copy in the shared folder when there is one; without
	// it moments get no embedding and search is full text only. It defaults to "".
	Embedder string `yaml:"embedder"`
	// Florence is the Florence-2 folder in the onnx-community layout: tokenizer.json and the
	// configurations at its top, the ONNX parts under onnx/. Empty uses
	// DataDir/models/florence-2 (where `vigil models fetch` puts it), else the shared folder's copy,
	// whichever holds a decoder; without it moments keep the caption composed from their objects.
	// It defaults to "".
	Florence string `yaml:"florence"`
}

// Pipeline configures per-frame work.
type Pipeline struct {
	// AnalysisFPS is how many frames per second of a source are analysed. It defaults to 5.
	AnalysisFPS float64 `yaml:"analysis_fps"`
	// QueueSize is the capacity of each queue between stages. It defaults to 4.
	QueueSize int      `yaml:"queue_size"`
	Motion    Motion   `yaml:"motion"`
	Detect    Detect   `yaml:"detect"`
	Moments   Moments  `yaml:"moments"`
	Captions  Captions `yaml:"captions"`
}

// Motion configures the MOG2 motion gate in front of the detector.
type Motion struct {
	// Enabled gates frames on motion; false sends every analysed frame to the detector.
	// It defaults to true.
	Enabled bool `yaml:"enabled"`
	// Width is the width frames are scaled down to before MOG2. It defaults to 320.
	Width int `yaml:"width"`
	// History is the number of frames MOG2 models the background over. It defaults to 300.
	History int `yaml:"history"`
	// VarThreshold is MOG2's squared Mahalanobis distance for foreground. It defaults to 16.
	VarThreshold float64 `yaml:"var_threshold"`
	// LearningRate is how much each frame updates the background model, from 0 to 1; 0 uses
	// OpenCV's automatic rate, which settles at 1/history. It defaults to 0.
	LearningRate float64 `yaml:"learning_rate"`
	// MinArea is the smallest moving region, as a fraction of the frame, that counts as motion.
	// It defaults to 0.001.
	MinArea float64 `yaml:"min_area"`
	// Warmup is the number of frames the background model learns from before it gates; they all go
	// to the detector. It defaults to 5.
	Warmup int `yaml:"warmup"`
}

// Detect configures the YOLOv8 detector.
type Detect struct {
	// Sessions is the number of ONNX Runtime sessions run in parallel; 0 means one per CPU core.
	// It defaults to 0.
	Sessions int `yaml:"sessions"`
	// Threads is the intra-op thread count of each session; on small machines several
	// single-thread sessions beat one multi-thread session. It defaults to 1.
	Threads int `yaml:"threads"`
	// Confidence is the minimum class score of a detection. It defaults to 0.35.
	Confidence float64 `yaml:"confidence"`
	// IoU is the overlap above which non-maximum suppression drops the weaker box of a class.
	// It defaults to 0.5.
	IoU float64 `yaml:"iou"`
	// Classes are the model classes kept; empty keeps all. It defaults to the people, vehicles,
	// animals and bags a security camera cares about.
	Classes []string `yaml:"classes"`
	// ClassConfidence overrides Confidence for some classes, e.g. {person: 0.5, bicycle: 0.3}.
	// It defaults to none.
	ClassConfidence map[string]float64 `yaml:"class_confidence"`
}

// Captions configures the captioning of moments' best frames with Florence-2.
type Captions struct {
	// Enabled captions moments when a Florence-2 model is installed. It defaults to true.
	Enabled bool `yaml:"enabled"`
	// Task is the Florence-2 prompt: <CAPTION>, <DETAILED_CAPTION> or <MORE_DETAILED_CAPTION>.
	// It defaults to <CAPTION>.
	Task string `yaml:"task"`
	// Precision picks the ONNX files by suffix (fp32, fp16, quantized, int8, uint8, q4, q4f16,
	// bnb4); empty takes the first present of quantized, q4, fp32 and the rest. It defaults to "".
	Precision string `yaml:"precision"`
	// Beams is the beam-search width; 1 decodes greedily, 0 uses generation_config.json's
	// num_beams (3). It defaults to 0.
	Beams int `yaml:"beams"`
	// MaxTokens is the longest caption in tokens. It defaults to 64.
	MaxTokens int `yaml:"max_tokens"`
	// Workers is the number of captions made at once, each with its own sessions. It defaults to 1.
	Workers int `yaml:"workers"`
	// Threads is the intra-op thread count of each worker's sessions. It defaults to 1.
	Threads int `yaml:"threads"`
	// QueueSize is how many moments may wait for a caption. It defaults to 16.
	QueueSize int `yaml:"queue_size"`
	// MaxAge is how long a live camera's moment may wait for a caption before it keeps the one
	// composed from its objects. It defaults to 30s.
	MaxAge time.Duration `yaml:"max_age"`
	// PerSecond caps captions started per second; 0 is no cap. Live moments over it are skipped,
	// replays wait. It defaults to 0.
	PerSecond float64 `yaml:"per_second"`
	// Every is how often a long moment's best frame is captioned while it lasts; every moment is
	// captioned when it closes. It defaults to 30s.
	Every time.Duration `yaml:"every"`
}

// SecurityClasses are the COCO classes kept by default: what a security team searches for, and
// not the household objects that small detectors hallucinate in street scenes.
var SecurityClasses = []string{
	"person", "bicycle", "car", "motorcycle", "bus", "truck", "train", "boat",
	"bird", "cat", "dog", "horse", "sheep", "cow", "bear",
	"backpack", "umbrella", "handbag", "suitcase", "skateboard", "knife",
}

// Moments configures how detections are grouped into moments.
type Moments struct {
	// IdleGap closes a moment after this long without detections. It defaults to 3s.
	IdleGap time.Duration `yaml:"idle_gap"`
	// MaxLength closes a moment that lasts this long and opens the next. It defaults to 60s.
	MaxLength time.Duration `yaml:"max_length"`
	// UpdateEvery is how often an open moment is published again with its growing span.
	// It defaults to 5s.
	UpdateEvery time.Duration `yaml:"update_every"`
	// ThumbnailWidth is the most pixels a moment's thumbnail is wide. It defaults to 640.
	ThumbnailWidth int `yaml:"thumbnail_width"`
	// ThumbnailQuality is the JPEG quality of thumbnails, 1 to 100. It defaults to 80.
	ThumbnailQuality int     `yaml:"thumbnail_quality"`
	Tracker          Tracker `yaml:"tracker"`
}

// Tracker configures the tracker that follows objects across frames.
type Tracker struct {
	// IoU is the least overlap between a track's predicted box and a detection for them to match.
	// It defaults to 0.3.
	IoU float64 `yaml:"iou"`
	// Hits is how many sightings make an object; 1 trusts the detector's first. It defaults to 1.
	Hits int `yaml:"hits"`
	// MaxMissed is how many frames in a row a track may go unseen before it ends. It defaults to 5.
	MaxMissed int `yaml:"max_missed"`
}

// Sink configures the writer from the bus into PostgreSQL.
type Sink struct {
	// BatchSize is the most moments written in one transaction. It defaults to 256.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is how long the sink waits to fill a batch. It defaults to 50ms.
	BatchWait time.Duration `yaml:"batch_wait"`
}

// Search tunes ranking and each query's plan.
type Search struct {
	// Timeout is each query's deadline; when the vector path misses its share of it, results come
	// from full text alone, marked degraded. It defaults to 500ms.
	Timeout time.Duration `yaml:"timeout"`
	// Candidates is how many moments full text and the vector path each rank before fusion. It
	// defaults to 100.
	Candidates int `yaml:"candidates"`
	// RRFK is reciprocal rank fusion's k: a moment at rank r of a path scores 1/(k+r). It defaults
	// to 60.
	RRFK float64 `yaml:"rrf_k"`
	// RecencyWeight lifts a moment's score by up to this share, halving every RecencyHalfLife of
	// age. It defaults to 0.2 and 168h.
	RecencyWeight   float64       `yaml:"recency_weight"`
	RecencyHalfLife time.Duration `yaml:"recency_half_life"`
	// PriorityWeight lifts a moment's score by this share times its source's priority (0 to 1).
	// It defaults to 0.2.
	PriorityWeight float64 `yaml:"priority_weight"`
	// ExactBelow is the most moments a query's filters may leave for the vector path to compare
	// with all of them; above it the HNSW index answers. It defaults to 20000.
	ExactBelow int `yaml:"exact_below"`
	// EFSearch is the HNSW candidate list size. It defaults to 400.
	EFSearch int `yaml:"ef_search"`
}

// Index configures indexing of files.
type Index struct {
	// CommitTimeout is how long an index job waits for its moments to be committed after the
	// pipeline finished; a job that waits longer fails (no sink running?). It defaults to 2m.
	CommitTimeout time.Duration `yaml:"commit_timeout"`
}

// Uploads configures files uploaded through the API, kept under DataDir/uploads.
type Uploads struct {
	// MaxBytes is the largest file POST /api/v1/videos accepts; a larger one is refused with 413.
	// It defaults to 2147483648 (2 GiB).
	MaxBytes int64 `yaml:"max_bytes"`
}

// Camera declares a camera of the configured tenant. The file owns the cameras it declares: the
// API cannot change them, and one no longer listed is removed from the registry (its moments stay).
type Camera struct {
	// Name is unique among the tenant's cameras, 1 to 100 characters.
	Name string `yaml:"name"`
	// URL is the rtsp:// or rtsps:// stream URL; credentials may be given as its user info
	// (rtsp://user:pass@host/path, percent-encoded). They are never shown.
	URL string `yaml:"url"`
	// AnalysisFPS overrides pipeline.analysis_fps for this camera; 0 does not. It defaults to 0.
	AnalysisFPS float64 `yaml:"analysis_fps"`
	// KeyframesOnly decodes only key frames, for cameras too many or too large to decode fully.
	// It defaults to false.
	KeyframesOnly bool `yaml:"keyframes_only"`
	// Enabled watches the camera; false keeps it registered but unwatched. It defaults to true.
	Enabled bool `yaml:"enabled"`
	// MotionMask lists areas whose movement never counts, such as a clock or trees in the wind:
	// polygons of {x, y} points in fractions of the frame, e.g. [[{x: 0.8, y: 0}, {x: 1, y: 0},
	// {x: 1, y: 0.1}]]. It defaults to none.
	MotionMask []Polygon `yaml:"motion_mask"`
	// Priority, 0 to 1, lifts the camera's moments in search ranking (an entrance over a car
	// park). It defaults to 0.
	Priority float64 `yaml:"priority"`
}

// cameraKeys are the YAML keys of a camera.
var cameraKeys = map[string]bool{"name": true, "url": true, "analysis_fps": true, "keyframes_only": true, "enabled": true, "motion_mask": true, "priority": true}

// UnmarshalYAML decodes a camera over its defaults, since a list item otherwise starts from zero.
// yaml.v3 does not pass KnownFields on to custom unmarshalers, so unknown keys are refused here.
func (c *Camera) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; !cameraKeys[k.Value] {
				return fmt.Errorf("line %d: field %s not found in camera", k.Line, k.Value)
			}
		}
	}
	type plain Camera // without this method
	cam := plain{Enabled: true}
	if err := n.Decode(&cam); err != nil {
		return err
	}
	*c = Camera(cam)
	return nil
}

// String shows the camera with its URL's password redacted.
func (c Camera) String() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Sprintf("camera %q (invalid url)", c.Name)
	}
	return fmt.Sprintf("camera %q %s", c.Name, u.Redacted())
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		DataDir:  ".vigil",
		Tenant:   "default",
		Log:      Log{Level: "info", Format: "text"},
		HTTP:     HTTP{Addr: "127.0.0.1:8420"},
		Database: Database{MaxConns: 8, Embedded: EmbeddedDatabase{Port: 5433}},
		NATS:     NATS{Replicas: 1, Embedded: EmbeddedNATS{Listen: "127.0.0.1:4223"}},
		ONNX:     ONNX{Provider: "cpu"},
		Pipeline: Pipeline{
			AnalysisFPS: 5,
			QueueSize:   4,
			Motion: Motion{
				Enabled: true, Width: 320, History: 300, VarThreshold: 16,
				MinArea: 0.001, Warmup: 5,
			},
			Detect: Detect{Threads: 1, Confidence: 0.35, IoU: 0.5,
				Classes: append([]string(nil), SecurityClasses...), ClassConfidence: map[string]float64{}},
			Moments: Moments{IdleGap: 3 * time.Second, MaxLength: 60 * time.Second, UpdateEvery: 5 * time.Second,
				ThumbnailWidth: 640, ThumbnailQuality: 80, Tracker: Tracker{IoU: 0.3, Hits: 1, MaxMissed: 5}},
			Captions: Captions{Enabled: true, Task: "<CAPTION>", MaxTokens: 64, Workers: 1, Threads: 1,
				QueueSize: 16, MaxAge: 30 * time.Second, Every: 30 * time.Second},
		},
		Sink:  Sink{BatchSize: 256, BatchWait: 50 * time.Millisecond},
		Index: Index{CommitTimeout: 2 * time.Minute},
		Search: Search{Timeout: 500 * time.Millisecond, Candidates: 100, RRFK: 60, RecencyWeight: 0.2,
			RecencyHalfLife: 7 * 24 * time.Hour, PriorityWeight: 0.2, ExactBelow: 20000, EFSearch: 400},
		Uploads: Uploads{MaxBytes: 2 << 30},
		Cameras: []Camera{},
	}
}

// Load builds the configuration: defaults, then the YAML file at path (skipped when path is
// empty; $VIGIL_CONFIG names one otherwise), then VIGIL_* environment variables, then Validate.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		path = os.Getenv("VIGIL_CONFIG")
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := Parse(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, os.LookupEnv); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// Parse decodes YAML over cfg; unknown fields are errors, so a typo never passes silently.
func Parse(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// tenantPattern keeps tenant ids usable as NATS subject tokens and in URLs.
var tenantPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidTenant reports whether id may name a tenant.
func ValidTenant(id string) bool { return tenantPattern.MatchString(id) }

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if !ValidTenant(c.Tenant) {
		bad("tenant", "%q is not a tenant id (lower-case letters, digits, - and _, up to 63)", c.Tenant)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%v", err)
	} else if !c.Auth.Required && !Loopback(c.HTTP.Addr) {
		bad("http.addr", "%s is not on loopback, so other machines could use the API without a token: turn auth on "+
			"(auth.required: true, or VIGIL_AUTH_REQUIRED=true) and make tokens with `vigil tokens create`, or listen on 127.0.0.1",
			c.HTTP.Addr)
	}
	// The token's value is never quoted: error messages end up in logs.
	switch t := c.Auth.BootstrapToken; {
	case t == "":
	case utf8.RuneCountInString(t) < minBootstrapToken:
		bad("auth.bootstrap_token", "must be at least %d characters", minBootstrapToken)
	case strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }):
		// It travels in an HTTP header, which carries neither spaces nor other than ASCII.
		bad("auth.bootstrap_token", "must be printable ASCII without spaces")
	}
	if c.Database.MaxConns < 1 {
		bad("database.max_conns", "must be at least 1, got %d", c.Database.MaxConns)
	}
	if p := c.Database.Embedded.Port; p < 1 || p > 65535 {
		bad("database.embedded.port", "%d is not a port", p)
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("nats.replicas", "must be 1 to 5, got %d", c.NATS.Replicas)
	}
	if _, _, err := net.SplitHostPort(c.NATS.Embedded.Listen); err != nil {
		bad("nats.embedded.listen", "%v", err)
	}
	if !oneOf(c.ONNX.Provider, "cpu", "cuda", "tensorrt") {
		bad("onnx.provider", "%q is not one of cpu, cuda, tensorrt", c.ONNX.Provider)
	}
	p := c.Pipeline
	if p.AnalysisFPS <= 0 || p.AnalysisFPS > 60 {
		bad("pipeline.analysis_fps", "must be in (0, 60], got %g", p.AnalysisFPS)
	}
	if p.QueueSize < 1 {
		bad("pipeline.queue_size", "must be at least 1, got %d", p.QueueSize)
	}
	if p.Motion.Width < 32 {
		bad("pipeline.motion.width", "must be at least 32, got %d", p.Motion.Width)
	}
	if p.Motion.History < 1 {
		bad("pipeline.motion.history", "must be at least 1, got %d", p.Motion.History)
	}
	if lr := p.Motion.LearningRate; !(lr >= 0 && lr <= 1) {
		bad("pipeline.motion.learning_rate", "must be in [0, 1], got %g", lr)
	}
	if p.Motion.VarThreshold <= 0 {
		bad("pipeline.motion.var_threshold", "must be positive, got %g", p.Motion.VarThreshold)
	}
	if p.Motion.MinArea < 0 || p.Motion.MinArea >= 1 {
		bad("pipeline.motion.min_area", "must be in [0, 1), got %g", p.Motion.MinArea)
	}
	if p.Motion.Warmup < 0 {
		bad("pipeline.motion.warmup", "must not be negative, got %d", p.Motion.Warmup)
	}
	if p.Detect.Sessions < 0 {
		bad("pipeline.detect.sessions", "must not be negative, got %d", p.Detect.Sessions)
	}
	if p.Detect.Threads < 1 {
		bad("pipeline.detect.threads", "must be at least 1, got %d", p.Detect.Threads)
	}
	if p.Detect.Confidence <= 0 || p.Detect.Confidence >= 1 {
		bad("pipeline.detect.confidence", "must be in (0, 1), got %g", p.Detect.Confidence)
	}
	for class, conf := range p.Detect.ClassConfidence {
		if conf <= 0 || conf >= 1 {
			bad("pipeline.detect.class_confidence", "%s: must be in (0, 1), got %g", class, conf)
		}
	}
	if p.Detect.IoU <= 0 || p.Detect.IoU >= 1 {
		bad("pipeline.detect.iou", "must be in (0, 1), got %g", p.Detect.IoU)
	}
	if p.Moments.IdleGap <= 0 {
		bad("pipeline.moments.idle_gap", "must be positive, got %s", p.Moments.IdleGap)
	}
	if p.Moments.MaxLength < p.Moments.IdleGap {
		bad("pipeline.moments.max_length", "must be at least idle_gap (%s), got %s", p.Moments.IdleGap, p.Moments.MaxLength)
	}
	if p.Moments.UpdateEvery <= 0 {
		bad("pipeline.moments.update_every", "must be positive, got %s", p.Moments.UpdateEvery)
	}
	if p.Moments.ThumbnailWidth < 32 {
		bad("pipeline.moments.thumbnail_width", "must be at least 32, got %d", p.Moments.ThumbnailWidth)
	}
	if q := p.Moments.ThumbnailQuality; q < 1 || q > 100 {
		bad("pipeline.moments.thumbnail_quality", "must be 1 to 100, got %d", q)
	}
	if t := p.Moments.Tracker; t.IoU <= 0 || t.IoU >= 1 {
		bad("pipeline.moments.tracker.iou", "must be in (0, 1), got %g", t.IoU)
	}
	if p.Moments.Tracker.Hits < 1 {
		bad("pipeline.moments.tracker.hits", "must be at least 1, got %d", p.Moments.Tracker.Hits)
	}
	if p.Moments.Tracker.MaxMissed < 1 {
		bad("pipeline.moments.tracker.max_missed", "must be at least 1, got %d", p.Moments.Tracker.MaxMissed)
	}
	switch cp := p.Captions; {
	case cp.Task != "<CAPTION>" && cp.Task != "<DETAILED_CAPTION>" && cp.Task != "<MORE_DETAILED_CAPTION>":
		bad("pipeline.captions.task", "must be <CAPTION>, <DETAILED_CAPTION> or <MORE_DETAILED_CAPTION>, got %q", cp.Task)
	case cp.Beams < 0 || cp.Beams > 8:
		bad("pipeline.captions.beams", "must be 0 to 8, got %d", cp.Beams)
	case cp.MaxTokens < 1 || cp.MaxTokens > 1024:
		bad("pipeline.captions.max_tokens", "must be 1 to 1024, got %d", cp.MaxTokens)
	case cp.Workers < 1 || cp.Threads < 1 || cp.QueueSize < 1:
		bad("pipeline.captions", "workers, threads and queue_size must be at least 1")
	case cp.MaxAge <= 0 || cp.Every <= 0 || !(cp.PerSecond >= 0):
		bad("pipeline.captions", "max_age and every must be positive and per_second not negative")
	}
	switch sc := c.Search; {
	case sc.Timeout <= 0 || sc.Timeout > time.Minute:
		bad("search.timeout", "must be in (0, 1m], got %s", sc.Timeout)
	case sc.Candidates < 10 || sc.Candidates > 1000:
		bad("search.candidates", "must be 10 to 1000, got %d", sc.Candidates)
	case !(sc.RRFK > 0):
		bad("search.rrf_k", "must be positive, got %g", sc.RRFK)
	case !(sc.RecencyWeight >= 0) || !(sc.PriorityWeight >= 0) || sc.RecencyHalfLife <= 0:
		bad("search", "recency_weight and priority_weight must not be negative, recency_half_life must be positive")
	case sc.ExactBelow < 0 || sc.EFSearch < 1 || sc.EFSearch > 1000:
		bad("search", "exact_below must not be negative and ef_search must be 1 to 1000")
	}
	if c.Sink.BatchSize < 1 {
		bad("sink.batch_size", "must be at least 1, got %d", c.Sink.BatchSize)
	}
	if c.Sink.BatchWait <= 0 {
		bad("sink.batch_wait", "must be positive, got %s", c.Sink.BatchWait)
	}
	if c.Index.CommitTimeout <= 0 {
		bad("index.commit_timeout", "must be positive, got %s", c.Index.CommitTimeout)
	}
	if c.Uploads.MaxBytes < 1 {
		bad("uploads.max_bytes", "must be at least 1, got %d", c.Uploads.MaxBytes)
	}
	names := map[string]bool{}
	for i, cam := range c.Cameras {
		field := fmt.Sprintf("cameras[%d]", i)
		switch name := strings.TrimSpace(cam.Name); {
		case name == "":
			bad(field+".name", "must not be empty")
		case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
			bad(field+".name", "must be text without control characters")
		case utf8.RuneCountInString(name) > 100:
			bad(field+".name", "must be at most 100 characters")
		case names[name]:
			bad(field+".name", "%q is already the name of another camera", name)
		default:
			names[name] = true
		}
		if problem := streamURLProblem(cam.URL); problem != "" {
			bad(field+".url", "%s", problem)
		}
		if fps := cam.AnalysisFPS; fps != 0 && !(fps > 0 && fps <= 60) {
			bad(field+".analysis_fps", "must be in (0, 60], or 0 for pipeline.analysis_fps, got %g", fps)
		}
		if err := ValidateMask(cam.MotionMask); err != nil {
			bad(field+".motion_mask", "%v", err)
		}
		if p := cam.Priority; !(p >= 0 && p <= 1) {
			bad(field+".priority", "must be 0 to 1, got %g", p)
		}
	}
	return errors.Join(errs...)
}

// streamURLProblem says what is wrong with a camera's stream URL without quoting it, since it may
// hold a password. The registry checks it again, and alone decides.
func streamURLProblem(raw string) string {
	const encode = "the user name and password must be percent-encoded (/ ? # @ as %2F %3F %23 %40)"
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "must not be empty"
	case err != nil:
		return "is not a valid URL; " + encode
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		return fmt.Sprintf("scheme must be rtsp or rtsps, got %q", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return "must be rtsp://[user:password@]host[:port]/path"
	case strings.Contains(u.Path+u.RawQuery+u.Fragment, "@") || u.User == nil && strings.Contains(raw, "@"):
		// An @ after the host means the user info did not end where it seemed to.
		return encode
	}
	return ""
}

// Loopback reports whether host, with or without a port, names this machine only: localhost or a
// loopback address. An empty host, which listens on every interface, does not.
func Loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}
