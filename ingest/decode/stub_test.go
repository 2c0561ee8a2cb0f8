//go:build !cgo

package decode_test

import (
	"errors"
	"testing"

	"github.com/vigilcam/vigil/ingest/decode"
)

func TestNoCgo(t *testing.T) {
	_, err := decode.OpenFile("any.mp4", decode.Options{})
	if !errors.Is(err, decode.ErrNoCgo) {
		t.Fatalf("OpenFile: %v, want ErrNoCgo", err)
	}
}
