//go:build cgo

package decode

/*
#cgo pkg-config: libavcodec libavutil libswscale
#include <errno.h>
#include <libavcodec/avcodec.h>

#include "convert.h"

enum {
	VS_EAGAIN = AVERROR(EAGAIN),
	VS_EOF = AVERROR_EOF,
	VS_ENOMEM = AVERROR(ENOMEM),
};

typedef struct {
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *frame;
	vd_conv conv;
} vs_stream;

// vs_quiet keeps libav's own lines off stderr: every failure reaches the caller as an error, and
// a damaged stream would otherwise flood the service's log around its logger.
static void vs_quiet(void) {
	av_log_set_level(AV_LOG_QUIET);
}

static void vs_free(vs_stream *s) {
	if (!s)
		return;
	vd_conv_free(&s->conv);
	av_frame_free(&s->frame);
	av_packet_free(&s->pkt);
	avcodec_free_context(&s->dec);
	av_free(s);
}

static int vs_open(vs_stream **out, enum AVCodecID id) {
	vs_stream *s = av_mallocz(sizeof(*s));
	if (!s)
		return AVERROR(ENOMEM);
	const AVCodec *codec = avcodec_find_decoder(id);
	if (!codec) {
		vs_free(s);
		return AVERROR_DECODER_NOT_FOUND;
	}
	s->dec = avcodec_alloc_context3(codec);
	s->pkt = av_packet_alloc();
	s->frame = av_frame_alloc();
	if (!s->dec || !s->pkt || !s->frame) {
		vs_free(s);
		return AVERROR(ENOMEM);
	}
	// Timestamps go in and come out in nanoseconds.
	s->dec->pkt_timebase = (AVRational){1, 1000000000};
	// One thread per stream: a machine watches many cameras on few cores, and frame threads
	// would add a frame of latency each.
	s->dec->thread_count = 1;
	int ret = avcodec_open2(s->dec, codec, NULL);
	if (ret < 0) {
		vs_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

// vs_send feeds one Annex-B access unit; size 0 drains the decoder.
static int vs_send(vs_stream *s, uint8_t *data, int size, int64_t pts) {
	if (size == 0)
		return avcodec_send_packet(s->dec, NULL);
	s->pkt->data = data;
	s->pkt->size = size;
	s->pkt->pts = pts;
	s->pkt->dts = AV_NOPTS_VALUE;
	int ret = avcodec_send_packet(s->dec, s->pkt);
	// The packet borrows Go's memory; the decoder has copied what it keeps.
	s->pkt->data = NULL;
	s->pkt->size = 0;
	return ret;
}

static int vs_receive(vs_stream *s, int64_t *pts, int *corrupt) {
	int ret = avcodec_receive_frame(s->dec, s->frame);
	if (ret < 0)
		return ret;
	*pts = s->frame->best_effort_timestamp;
	*corrupt = s->frame->decode_error_flags || (s->frame->flags & AV_FRAME_FLAG_CORRUPT);
	return 0;
}
*/
import "C"

import (
	"fmt"
	"io/fs"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/vigilcam/vigil/ingest"
)

var quiet sync.Once

// Stream decodes the access units of one H.264 or H.265 stream, as an RTSP source receives them.
// It is not safe for concurrent use.
type Stream struct {
	c      *C.vs_stream
	codec  Codec
	opts   StreamOptions
	sample sampler
	// started is set once a random access unit has gone in: what comes before it cannot decode.
	started bool
	// params are the parameter sets from the SDP, sent ahead of the first access unit.
	params [][]byte
	annexB []byte
	// walls remembers the wall-clock time of each access unit in flight, by PTS, because the
	// decoder hands pictures out in display order, not in the order they went in.
	walls map[time.Duration]time.Time
	last  time.Duration
	// fails counts access units in a row that the decoder refused.
	fails                          int
	seq, decoded, corrupt, skipped int64
}

// NewStream returns a decoder for codec; params are the parameter sets the SDP announced (SPS and
// PPS, and VPS for H.265), in any order; nil when the stream carries them in band.
func NewStream(codec Codec, params [][]byte, opts StreamOptions) (*Stream, error) {
	if opts.FPS < 0 || math.IsNaN(opts.FPS) || math.IsInf(opts.FPS, 0) {
		return nil, fmt.Errorf("decode %s stream: options: FPS %v is not a rate", codec, opts.FPS)
	}
	var id C.enum_AVCodecID
	switch codec {
	case H264:
		id = C.AV_CODEC_ID_H264
	case H265:
		id = C.AV_CODEC_ID_HEVC
	default:
		return nil, fmt.Errorf("decode %q stream: %w", codec, ErrUnsupportedCodec)
	}
	quiet.Do(func() { C.vs_quiet() })
	s := &Stream{codec: codec, opts: opts, sample: newSampler(opts.FPS), walls: map[time.Duration]time.Time{}}
	if rc := C.vs_open(&s.c, id); rc < 0 {
		return nil, fmt.Errorf("decode %s stream: open decoder: %w", codec, avError(rc))
	}
	s.params = nonEmpty(params)
	return s, nil
}

// Decode feeds one access unit (its NAL units without start codes) with its stream time and
// wall-clock time, and returns the frames now due at the analysis rate, each with a BGR buffer the
// caller keeps. Access units before the first random access unit are skipped, and with
// KeyframesOnly so is every unit that is not one. A damaged access unit is skipped and counted;
// only a long run of them is an error.
func (s *Stream) Decode(au [][]byte, pts time.Duration, wall time.Time) ([]ingest.Frame, error) {
	if s.c == nil {
		return nil, fmt.Errorf("decode %s stream: %w", s.codec, fs.ErrClosed)
	}
	au = nonEmpty(au)
	if len(au) == 0 {
		return nil, nil
	}
	random := randomAccess(s.codec, au)
	if !random && (!s.started || s.opts.KeyframesOnly) {
		s.skipped++
		return nil, nil
	}
	units := au
	if !s.started && len(s.params) > 0 {
		units = append(append([][]byte(nil), s.params...), au...)
	}
	s.started = true
	s.annexB = appendAnnexB(s.annexB[:0], units)
	if len(s.walls) < maxInFlight {
		s.walls[pts] = wall
	}
	rc := C.vs_send(s.c, (*C.uint8_t)(unsafe.Pointer(&s.annexB[0])), C.int(len(s.annexB)), C.int64_t(pts))
	if rc < 0 && rc != C.VS_EAGAIN {
		s.corrupt++
		s.fails++
		if s.fails >= maxFails {
			return nil, fmt.Errorf("decode %s stream: %d access units in a row refused: %w", s.codec, s.fails, avError(rc))
		}
		return nil, nil
	}
	s.fails = 0
	return s.receive()
}

// Flush drains the pictures the decoder still holds (it keeps some back to reorder them) and
// returns those due; the stream can then take a new random access unit, as after a reconnect.
func (s *Stream) Flush() ([]ingest.Frame, error) {
	if s.c == nil {
		return nil, nil
	}
	if rc := C.vs_send(s.c, nil, 0, 0); rc < 0 && rc != C.VS_EOF {
		return nil, fmt.Errorf("decode %s stream: flush: %w", s.codec, avError(rc))
	}
	frames, err := s.receive()
	C.avcodec_flush_buffers(s.c.dec)
	s.started = false
	clear(s.walls)
	return frames, err
}

func (s *Stream) receive() ([]ingest.Frame, error) {
	var frames []ingest.Frame
	for {
		var ts C.int64_t
		var corrupt C.int
		rc := C.vs_receive(s.c, &ts, &corrupt)
		if rc == C.VS_EAGAIN || rc == C.VS_EOF {
			return frames, nil
		}
		if rc < 0 {
			return frames, fmt.Errorf("decode %s stream: %w", s.codec, avError(rc))
		}
		s.decoded++
		if corrupt != 0 {
			s.corrupt++
		}
		pts := s.last
		if ts != C.AV_NOPTS_VALUE && time.Duration(ts) > pts {
			pts = time.Duration(ts)
		}
		wall, ok := s.walls[time.Duration(ts)]
		if !ok {
			wall = time.Now()
		}
		for p := range s.walls {
			if p <= time.Duration(ts) {
				delete(s.walls, p)
			}
		}
		s.last = pts
		if !s.sample.due(pts) {
			continue
		}
		if rc := C.vd_conv_scale(&s.c.conv, s.c.frame); rc < 0 {
			return frames, fmt.Errorf("decode %s stream: convert frame %d (%dx%d) to BGR: %w", s.codec,
				s.decoded, s.c.frame.width, s.c.frame.height, avError(rc))
		}
		w, h, bgr := packBGR(&s.c.conv)
		frames = append(frames, ingest.Frame{Seq: s.seq, Width: w, Height: h, BGR: bgr, PTS: pts, Wall: wall})
		s.seq++
	}
}

// Stats reports the pictures decoded, the access units skipped while waiting for a random access
// unit (or as non-key frames), and those the decoder found damaged.
func (s *Stream) Stats() (decoded, skipped, corrupt int64) { return s.decoded, s.skipped, s.corrupt }

// Close frees the decoder. It is safe to call twice.
func (s *Stream) Close() error {
	if s.c != nil {
		C.vs_free(s.c)
		s.c = nil
	}
	return nil
}

// avError is a libav error code.
type avError C.int

func (e avError) Error() string {
	var buf [C.AV_ERROR_MAX_STRING_SIZE]C.char
	C.av_strerror(C.int(e), &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}
