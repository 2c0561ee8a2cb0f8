//go:build cgo

package decode_test

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/decode"
)

// sharedDir finds the team's shared folder: $VIGIL_SHARED_DIR, else the sibling "shared" of the
// module root.
func sharedDir(tb testing.TB) string {
	if d := os.Getenv("VIGIL_SHARED_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared")
		}
		if filepath.Dir(dir) == dir {
			tb.Skipf("no go.mod above %s and VIGIL_SHARED_DIR is unset: cannot find the shared media", wd)
		}
	}
}

// clip returns the path of a shared test clip, skipping the test when it is absent.
func clip(tb testing.TB, name string) string {
	p := filepath.Join(sharedDir(tb), "media", name)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("test clip %s is missing: %v", name, err)
	}
	return p
}

func ffmpegPath(tb testing.TB) string {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		tb.Skipf("ffmpeg is not on PATH, needed to make the reference: %v", err)
	}
	return p
}

// drain decodes to the end and returns the frames without their pixels, and the error that ended
// the stream.
func drain(tb testing.TB, f *decode.File) ([]ingest.Frame, error) {
	tb.Helper()
	var frames []ingest.Frame
	for {
		fr, err := f.Next()
		if err != nil {
			return frames, err
		}
		if want := fr.Width * fr.Height * 3; len(fr.BGR) != want {
			tb.Fatalf("frame %d: %d BGR bytes for %dx%d, want %d", fr.Seq, len(fr.BGR), fr.Width, fr.Height, want)
		}
		fr.BGR = nil
		frames = append(frames, fr)
	}
}

// decodeAll opens path and decodes it to a clean end.
func decodeAll(tb testing.TB, path string, opts decode.Options) (decode.Info, []ingest.Frame, int64) {
	tb.Helper()
	f, err := decode.OpenFile(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	frames, err := drain(tb, f)
	if !errors.Is(err, io.EOF) {
		tb.Fatalf("after %d frames: %v, want io.EOF", len(frames), err)
	}
	return f.Info(), frames, f.Decoded()
}
