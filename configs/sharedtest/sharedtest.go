// Package sharedtest gives tests the team's shared models and clips, which are never copied into
// the repository, and skips a test, naming the file, when one is absent.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilcam/vigil/configs"
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
