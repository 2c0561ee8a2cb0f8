//go:build !cgo

package decode

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigilcam/vigil/ingest"
)

// ErrNoCgo is returned by NewStream in a build without cgo, which cannot reach libavcodec.
var ErrNoCgo = errors.New("vigil was built without cgo, so it cannot decode video: " +
	"build it with CGO_ENABLED=1 and the libavformat, libavcodec, libavutil and libswscale " +
	"development packages installed (Debian: libavformat-dev libavcodec-dev libavutil-dev libswscale-dev)")

// Stream decodes an H.264 or H.265 stream; in this build it never opens.
type Stream struct{}

// NewStream returns ErrNoCgo.
func NewStream(codec Codec, params [][]byte, opts StreamOptions) (*Stream, error) {
	return nil, fmt.Errorf("decode %s stream: %w", codec, ErrNoCgo)
}

// Decode returns ErrNoCgo.
func (s *Stream) Decode(au [][]byte, pts time.Duration, wall time.Time) ([]ingest.Frame, error) {
	return nil, ErrNoCgo
}

// Flush returns nothing.
func (s *Stream) Flush() ([]ingest.Frame, error) { return nil, nil }

// Stats returns zeros.
func (s *Stream) Stats() (decoded, skipped, corrupt int64) { return 0, 0, 0 }

// Close does nothing. It is safe to call twice.
func (s *Stream) Close() error { return nil }
