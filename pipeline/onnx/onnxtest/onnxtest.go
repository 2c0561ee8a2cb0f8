// Package onnxtest loads ONNX Runtime for tests, skipping them (naming the file) when the library
// deploy/setup.sh installs is absent, and failing them when it is present but will not load.
package onnxtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilcam/vigil/pipeline/onnx"
)

// Init loads the runtime from $VIGIL_ONNX_LIBRARY or .deps/onnxruntime.
func Init(t testing.TB) {
	t.Helper()
	lib, err := onnx.Library(os.Getenv("VIGIL_ONNX_LIBRARY"))
	if err != nil {
		t.Skipf("%v (run deploy/setup.sh)", err)
	}
	if !filepath.IsAbs(lib) && filepath.Base(lib) == lib {
		t.Skipf("ONNX Runtime library .deps/onnxruntime/libonnxruntime.so.1 is absent (run deploy/setup.sh)")
	}
	if err := onnx.Init(lib); err != nil {
		t.Fatal(err)
	}
}
