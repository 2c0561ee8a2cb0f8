//go:build !cgo

package decode_test

import (
	"errors"
	"testing"

	"github.com/vigilcam/vigil/ingest/decode"
)

func TestNoCgo(t *testing.T) {
	_, err := decode.NewStream(decode.H264, nil, decode.StreamOptions{})
	if !errors.Is(err, decode.ErrNoCgo) {
		t.Fatalf("NewStream: %v, want ErrNoCgo", err)
	}
}
