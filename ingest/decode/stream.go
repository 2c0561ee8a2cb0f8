// Package decode owns decoding video: H.264 and H.265 access units, as RTSP delivers them,
// through FFmpeg's libavcodec via cgo, into packed BGR frames at the rate the pipeline analyses
// them. Files never come here directly: they are replayed over RTSP like a camera.
//
// Without cgo the package still builds, and NewStream returns ErrNoCgo.
package decode

import (
	"errors"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// Codec names a compressed video format a Stream decodes.
type Codec string

// The codecs cameras send over RTSP that vigil decodes.
const (
	H264 Codec = "h264"
	H265 Codec = "h265"
)

// ErrUnsupportedCodec is returned for a stream in a codec vigil does not decode.
var ErrUnsupportedCodec = errors.New("unsupported codec (vigil decodes H.264 and H.265)")

// StreamOptions controls which decoded pictures of a stream are passed on.
type StreamOptions struct {
	// FPS is the analysis rate: pictures are passed on at most this often in stream time. Every
	// access unit is still decoded, because later pictures refer to earlier ones. 0 passes every
	// picture. It defaults to 0.
	FPS float64
	// KeyframesOnly decodes only random access units and skips the rest undecoded, trading
	// detail (a camera sends one every one to four seconds) for far less CPU. It defaults to false.
	KeyframesOnly bool
}

const (
	// maxFails access units refused in a row means the stream is not what it claims to be.
	maxFails = 100
	// maxInFlight bounds the wall-clock times kept for access units still inside the decoder; a
	// decoder holds a few, so only a stream with broken timestamps gets near it.
	maxInFlight = 64
)

// nonEmpty returns au without empty NAL units, which carry nothing and which mediacommon's NAL
// type checks index without looking (found by FuzzStream).
func nonEmpty(au [][]byte) [][]byte {
	for i, u := range au {
		if len(u) == 0 {
			kept := append([][]byte(nil), au[:i]...)
			for _, u := range au[i+1:] {
				if len(u) > 0 {
					kept = append(kept, u)
				}
			}
			return kept
		}
	}
	return au
}

// randomAccess reports whether decoding can start at au, which holds no empty NAL unit.
func randomAccess(codec Codec, au [][]byte) bool {
	if codec == H265 {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// appendAnnexB appends the NAL units to buf, each after a start code, as libavcodec's parsers
// expect them.
func appendAnnexB(buf []byte, units [][]byte) []byte {
	for _, u := range units {
		buf = append(buf, 0, 0, 0, 1)
		buf = append(buf, u...)
	}
	return buf
}
