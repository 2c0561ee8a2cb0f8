package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
)

// runAll runs a command to its end and returns its stdout, stderr and exit code.
func (c *cli) runAll(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := c.command(nil, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		c.t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
	}
	c.t.Logf("vigil %s → %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return stdout.String(), stderr.String(), code
}

// TestModelsFetchAndVerify installs the int8 YOLOv8n from a mirror over HTTP, the way a site
// without internet access would, then verifies and runs it, and catches it once damaged.
func TestModelsFetchAndVerify(t *testing.T) {
	onnxtest.Init(t) // verify runs the model
	mirror := t.TempDir()
	if err := os.Mkdir(filepath.Join(mirror, "yolov8n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sharedtest.YOLO(t), filepath.Join(mirror, "yolov8n", "yolov8n_quantized.onnx")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(mirror)))
	defer srv.Close()
	c := newCLI(t)
	model := filepath.Join(c.dataDir, "models", "yolov8n", "yolov8n_quantized.onnx")

	out, _, code := c.runAll("models", "fetch", "--mirror", srv.URL, "--yolo", "int8", "yolo")
	if code != 0 || !strings.Contains(out, "YOLOv8n int8 is installed") || !strings.Contains(out, "vigil loads "+model) {
		t.Fatalf("fetch: exit %d, output %q", code, out)
	}
	if _, errOut, code := c.runAll("models", "fetch", "--mirror", srv.URL, "--yolo", "int8", "yolo"); code != 0 ||
		!strings.Contains(errOut, "already installed, sha256 verified") {
		t.Errorf("second fetch: exit %d, stderr %q", code, errOut)
	}
	out, _, code = c.runAll("models", "verify")
	if code != 0 || !strings.Contains(out, "yolov8n/yolov8n_quantized.onnx  3.5 MB: sha256 matches") ||
		!strings.Contains(out, "ok         run "+model+": 80 classes") {
		t.Errorf("verify: exit %d, output %q", code, out)
	}

	if _, errOut, code := c.runAll("models", "fetch", "--precision", "fp32", "florence"); code != 2 || !strings.Contains(errOut, "--unverified") {
		t.Errorf("fetch of Florence-2 fp32 without --unverified: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := c.runAll("models", "fetch", "--mirror", srv.URL, "embedder"); code != 1 ||
		!strings.Contains(errOut, srv.URL+"/all-MiniLM-L6-v2/onnx/model.onnx: 404 Not Found") {
		t.Errorf("fetch of a model the mirror lacks: exit %d, stderr %q", code, errOut)
	}

	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(model, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = c.runAll("models", "verify")
	if code != 1 || !strings.Contains(out, "FAIL       yolov8n/yolov8n_quantized.onnx: content does not match the catalog: sha256 ") {
		t.Errorf("verify of a damaged model: exit %d, output %q", code, out)
	}
}

// tinyFlorence lays the generated tiny Florence-2 out as `vigil models fetch` installs the real
// one, with the real tokenizer and configurations, and returns its folder.
func tinyFlorence(t *testing.T) string {
	t.Helper()
	shared := filepath.Dir(sharedtest.File(t, "models", "florence-2", "tokenizer.json"))
	dir := filepath.Join(t.TempDir(), "florence-2")
	if err := os.MkdirAll(filepath.Join(dir, "onnx"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json", "preprocessor_config.json"} {
		if err := os.Symlink(filepath.Join(shared, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	tiny, err := filepath.Abs(filepath.Join("..", "..", "pipeline", "caption", "testdata", "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"vision_encoder", "embed_tokens", "encoder_model", "decoder_model_merged"} {
		if err := os.Symlink(filepath.Join(tiny, p+".onnx"), filepath.Join(dir, "onnx", p+".onnx")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCaptionerChecks runs Florence-2 in verify and doctor.
func TestCaptionerChecks(t *testing.T) {
	onnxtest.Init(t)
	dir := tinyFlorence(t)
	c := newCLI(t)
	env := []string{"VIGIL_MODELS_FLORENCE=" + dir, "VIGIL_PIPELINE_CAPTIONS_BEAMS=1"}
	// The tiny model says "A person walking at night." of a dark frame.
	out, code := c.run(env, "models", "verify")
	if !strings.Contains(out, "ok         run "+dir+": florence-2/decoder_model_merged.onnx") || !strings.Contains(out, `"A person walking at night."`) {
		t.Errorf("verify: exit %d, output %q", code, out)
	}
	if out, _ := c.run(env, "doctor"); !strings.Contains(out, `ok    captioner   florence-2/decoder_model_merged.onnx`) {
		t.Errorf("doctor: %q", out)
	}
}

// TestIndexWithCaptions indexes a clip with a captioner installed: `vigil index` returns once the
// captions are committed, and search finds the moments by their words.
func TestIndexWithCaptions(t *testing.T) {
	onnxtest.Init(t)
	clip := sharedtest.Clip(t, "car-detection.mp4")
	sharedtest.YOLO(t)
	c := newCLI(t)
	env := []string{"VIGIL_MODELS_FLORENCE=" + tinyFlorence(t)}
	if out, code := c.run(env, "index", clip); code != 0 {
		t.Fatalf("index: exit %d, output %q", code, out)
	}
	// The tiny model calls a bright frame a parked car (3 beams, as generation_config.json says)
	// and a dark one a person at night; search finds each moment by words only its caption has.
	found := map[string]string{}
	for _, q := range []string{"parked street", "walking night"} {
		out, code := c.run(env, "search", "--json", "--top-k", "10", q)
		if code != 0 {
			t.Fatalf("search %q: exit %d", q, code)
		}
		var reply searchReply
		decodeStrict(t, out, &reply)
		for _, r := range reply.Results {
			if r.Caption != "The red car is parked on the street." && r.Caption != "A person walking at night." {
				t.Errorf("search %q: moment %s captioned %q", q, r.MomentID, r.Caption)
			}
			found[r.MomentID] = r.Caption
		}
	}
	if len(found) != 3 {
		t.Errorf("found %v by their captions, want car-detection.mp4's 3 moments", found)
	}
}
