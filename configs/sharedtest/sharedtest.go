// Package sharedtest gives tests the team's shared models and clips, which are never copied into
// the repository, and skips a test, naming the file, when one is absent.
package sharedtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
)

// File returns the path of a file under the shared folder ($VIGIL_SHARED_DIR or ../shared), or
// skips the test when it is absent.
func File(t testing.TB, rel ...string) string {
	t.Helper()
	dir := configs.SharedDir()
	p := filepath.Join(append([]string{dir}, rel...)...)
	if dir == "" {
		t.Skipf("shared folder not found (set VIGIL_SHARED_DIR): need %s", filepath.Join(rel...))
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared file %s is absent: %v", p, err)
	}
	return p
}

// YOLO returns the int8 YOLOv8n model every detection test uses.
func YOLO(t testing.TB) string {
	t.Helper()
	return File(t, "models", "yolov8n", "yolov8n_quantized.onnx")
}

// Clip returns a clip from the shared media folder.
func Clip(t testing.TB, name string) string {
	t.Helper()
	return File(t, "media", name)
}

// FrameAt grabs the frame of a clip at a time (ffmpeg's -ss syntax) as packed BGR with the ffmpeg
// CLI, so that tests of later stages do not depend on vigil's own decoder.
func FrameAt(t testing.TB, clip, at string, w, h int) *ingest.Frame {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg is not installed (run deploy/setup.sh)")
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", at, "-i", clip, "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "bgr24", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	if len(out) != w*h*3 {
		t.Fatalf("ffmpeg gave %d bytes, want %dx%dx3", len(out), w, h)
	}
	return &ingest.Frame{Width: w, Height: h, BGR: out}
}
