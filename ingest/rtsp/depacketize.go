package rtsp

import (
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// depacketizer turns RTP packets into access units, for either codec.
type depacketizer struct {
	decode func(*rtp.Packet) ([][]byte, error)
}

// depacketizer returns a fresh RTP depacketizer for the track. Its decode returns nil and an
// error while an access unit is incomplete or after a gap; the caller waits for the next one.
func (t track) depacketizer() (*depacketizer, error) {
	switch f := t.format.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return &depacketizer{decode: d.Decode}, nil
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return &depacketizer{decode: d.Decode}, nil
	}
	return nil, ErrNoVideo
}
