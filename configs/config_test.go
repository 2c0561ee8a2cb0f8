package configs_test

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilcam/vigil/configs"
)

// The shipped sample must document exactly the defaults: decoding it over a zero Config must give
// Default(), and it must name every field (a field left out whose default is zero would otherwise
// slip through).
func TestSampleEqualsDefaults(t *testing.T) {
	data, err := os.ReadFile("vigil.yml")
	if err != nil {
		t.Fatal(err)
	}
	var got configs.Config
	if err := configs.Parse(data, &got); err != nil {
		t.Fatalf("parse vigil.yml: %v", err)
	}
	if want := configs.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("vigil.yml differs from Default():\n got %+v\nwant %+v", got, want)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	collectKeys(doc.Content[0], "VIGIL", present)
	for _, name := range configs.EnvVars() {
		if !present[name] {
			t.Errorf("vigil.yml does not document the field behind %s", name)
		}
	}
}

func collectKeys(n *yaml.Node, prefix string, into map[string]bool) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := prefix + "_" + strings.ToUpper(n.Content[i].Value)
		into[name] = true
		if n.Content[i+1].Kind == yaml.MappingNode {
			collectKeys(n.Content[i+1], name, into)
		}
	}
}

func TestDefaultsValidate(t *testing.T) {
	if err := configs.Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadLayers(t *testing.T) {
	file := t.TempDir() + "/vigil.yml"
	yml := "tenant: acme\npipeline:\n  analysis_fps: 2\n  moments:\n    idle_gap: 5s\n"
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_PIPELINE_ANALYSIS_FPS", "7.5")
	t.Setenv("VIGIL_DATABASE_URL", "postgres://db/vigil")
	t.Setenv("VIGIL_NATS_URL", "nats://bus:4222")
	t.Setenv("VIGIL_PIPELINE_MOTION_ENABLED", "false")
	t.Setenv("VIGIL_PIPELINE_DETECT_CLASSES", "person, car,")
	t.Setenv("VIGIL_UPLOADS_MAX_BYTES", "5000000000")
	t.Setenv("VIGIL_PIPELINE_DETECT_CLASS_CONFIDENCE", "person=0.5, bicycle = 0.3")
	cfg, err := configs.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"tenant from file", cfg.Tenant, "acme"},
		{"idle gap from file", cfg.Pipeline.Moments.IdleGap, 5 * time.Second},
		{"fps from env over file", cfg.Pipeline.AnalysisFPS, 7.5},
		{"database url from env", cfg.Database.URL, "postgres://db/vigil"},
		{"nats url from env", cfg.NATS.URL, "nats://bus:4222"},
		{"bool from env", cfg.Pipeline.Motion.Enabled, false},
		{"untouched default", cfg.Sink.BatchSize, 256},
		{"list from env", strings.Join(cfg.Pipeline.Detect.Classes, "|"), "person|car"},
		{"int64 from env", cfg.Uploads.MaxBytes, int64(5000000000)},
		{"map from env", fmt.Sprint(cfg.Pipeline.Detect.ClassConfidence), "map[bicycle:0.3 person:0.5]"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadReportsEveryError(t *testing.T) {
	t.Setenv("VIGIL_SINK_BATCH_SIZE", "lots")
	if _, err := configs.Load(""); err == nil || !strings.Contains(err.Error(), "VIGIL_SINK_BATCH_SIZE") {
		t.Errorf("malformed env value: got %v", err)
	}
	os.Unsetenv("VIGIL_SINK_BATCH_SIZE")

	cfg := configs.Default()
	cfg.Tenant = "Bad Tenant"
	cfg.Pipeline.AnalysisFPS = 0
	cfg.Pipeline.Detect.Confidence = 2
	cfg.Pipeline.Detect.ClassConfidence = map[string]float64{"person": 0}
	cfg.ONNX.Provider = "tpu"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config validated")
	}
	for _, field := range []string{"tenant", "pipeline.analysis_fps", "pipeline.detect.confidence", "pipeline.detect.class_confidence", "onnx.provider"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error does not mention %s: %v", field, err)
		}
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	var cfg configs.Config
	err := configs.Parse([]byte("pipeline:\n  analysis_fsp: 3\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "analysis_fsp") {
		t.Fatalf("typo accepted: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	sample, err := os.ReadFile("vigil.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte("tenant: [1, 2"))
	f.Add([]byte("pipeline: {moments: {idle_gap: -3h}}"))
	f.Add([]byte("cameras: [{name: a, url: 'rtsp://u:p@h/'}, {enabled: no}, 3, {bogus: 1}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := configs.Default()
		if configs.Parse(data, &cfg) == nil {
			_ = cfg.Validate() // must not panic on whatever parsed
		}
	})
}

func TestCameras(t *testing.T) {
	const secret = "s3cr3t-Pw"
	cfg := configs.Default()
	yml := `cameras:
  - name: gate
    url: rtsp://admin:` + secret + `@10.0.0.5:554/live
    analysis_fps: 2
  - name: yard
    url: rtsps://10.0.0.6/live
    keyframes_only: true
    enabled: false
    priority: 0.5
    motion_mask:
      - [{x: 0.8, y: 0}, {x: 1, y: 0}, {x: 1, y: 0.1}, {x: 0.8, y: 0.1}]
`
	if err := configs.Parse([]byte(yml), &cfg); err != nil {
		t.Fatal(err)
	}
	want := []configs.Camera{
		{Name: "gate", URL: "rtsp://admin:" + secret + "@10.0.0.5:554/live", AnalysisFPS: 2, Enabled: true},
		{Name: "yard", URL: "rtsps://10.0.0.6/live", KeyframesOnly: true, Priority: 0.5,
			MotionMask: []configs.Polygon{{{X: 0.8, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 0.1}, {X: 0.8, Y: 0.1}}}},
	}
	if !reflect.DeepEqual(cfg.Cameras, want) {
		t.Errorf("cameras %v, want %v (enabled unless it says otherwise)", cfg.Cameras, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	if s := fmt.Sprint(cfg.Cameras); strings.Contains(s, secret) || !strings.Contains(s, "admin:xxxxx@") {
		t.Errorf("printed cameras: %s", s)
	}
	for _, name := range configs.EnvVars() {
		if strings.HasPrefix(name, "VIGIL_CAMERAS") {
			t.Errorf("cameras have no environment variable, got %s", name)
		}
	}

	err := configs.Parse([]byte("cameras:\n  - name: a\n    fps: 2\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "fps") {
		t.Errorf("unknown camera field accepted: %v", err)
	}

	cfg = configs.Default()
	cfg.Cameras = []configs.Camera{
		{Name: "", URL: "rtsp://h/a"},
		{Name: "gate", URL: "http://admin:" + secret + "@h/"},
		{Name: "gate", URL: "rtsp://admin:12/" + secret + "@h/"},
		{Name: strings.Repeat("x", 101), URL: "rtsp:" + secret, AnalysisFPS: 61},
		{Name: "yard", URL: "rtsp://h/b", MotionMask: []configs.Polygon{{{X: 0, Y: 0}, {X: 1.5, Y: 0}, {X: 0, Y: 1}}}, Priority: 2},
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("invalid cameras validated")
	}
	for _, field := range []string{"cameras[0].name", "cameras[1].url", "cameras[2].name", "cameras[2].url",
		"cameras[3].name", "cameras[3].url", "cameras[3].analysis_fps", "cameras[4].motion_mask", "cameras[4].priority"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error does not mention %s: %v", field, err)
		}
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows a password: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost:8420": true, "127.0.0.1": true, "127.9.9.9:80": true, "[::1]": true,
		"[::1]:8420": true, "::1": true, "::ffff:127.0.0.1": true,
		"": false, ":8420": false, "0.0.0.0:8420": false, "[::]:8420": false, "192.0.2.7": false,
		"evil.example": false, "127.0.0.1.evil.example:80": false, "localhost.evil.example": false,
	} {
		if got := configs.Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %t, want %t", host, got, want)
		}
	}
}

func TestAuth(t *testing.T) {
	const secret = "Tr0ub4dor-and-3-more-words-to-be-long"
	for _, c := range []struct {
		addr     string
		required bool
		token    string
		wantErr  string // a field:, or "" for valid
	}{
		{"127.0.0.1:8420", false, "", ""},
		{"127.0.0.2:8420", false, "", ""},
		{"[::1]:8420", false, "", ""},
		{"localhost:8420", false, "", ""},
		{"0.0.0.0:8420", false, "", "http.addr:"},
		{":8420", false, "", "http.addr:"},
		{"[::]:8420", false, "", "http.addr:"},
		{"192.0.2.7:8420", false, "", "http.addr:"},
		{"vigil.example:8420", false, "", "http.addr:"},
		{"0.0.0.0:8420", true, "", ""},
		{"0.0.0.0:8420", true, secret, ""},
		{"127.0.0.1:8420", false, secret, ""},
		{"127.0.0.1:8420", true, secret[:31], "auth.bootstrap_token:"},
		{"127.0.0.1:8420", true, secret + " x", "auth.bootstrap_token:"},
		{"127.0.0.1:8420", true, secret + "é", "auth.bootstrap_token:"},
	} {
		cfg := configs.Default()
		cfg.HTTP.Addr, cfg.Auth.Required, cfg.Auth.BootstrapToken = c.addr, c.required, c.token
		err := cfg.Validate()
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("addr %s, required %t: %v", c.addr, c.required, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("addr %s, required %t, token of %d: %v, want an error about %s", c.addr, c.required, len(c.token), err, c.wantErr)
		case err != nil && (strings.Contains(err.Error(), secret[:20])):
			t.Errorf("error shows the token: %v", err)
		case strings.HasPrefix(c.wantErr, "http.addr") && !strings.Contains(err.Error(), "auth.required"):
			t.Errorf("error does not say to turn auth on: %v", err)
		}
	}

	t.Setenv("VIGIL_AUTH_REQUIRED", "true")
	t.Setenv("VIGIL_AUTH_BOOTSTRAP_TOKEN", secret)
	t.Setenv("VIGIL_HTTP_ADDR", "0.0.0.0:8420")
	cfg, err := configs.Load("")
	if err != nil || !cfg.Auth.Required || cfg.Auth.BootstrapToken != secret {
		t.Fatalf("auth from the environment: %v %v", cfg.Auth, err)
	}
	for _, shown := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprint(cfg.Auth)} {
		if strings.Contains(shown, secret) || !strings.Contains(shown, "BootstrapToken:xxxxx") {
			t.Errorf("printed configuration shows the bootstrap token, or not that there is one: %s", shown)
		}
	}
}
