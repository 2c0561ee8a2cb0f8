//go:build !cgo

package replay_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/vigilcam/vigil/ingest/replay"
)

// TestNoCgo: without cgo the server still starts, and Open says how to build a vigil that replays.
func TestNoCgo(t *testing.T) {
	srv, err := replay.New(replay.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if _, err := srv.Open(path, replay.Options{}); !errors.Is(err, replay.ErrNoCgo) {
		t.Fatalf("open: %v, want ErrNoCgo", err)
	}
}
