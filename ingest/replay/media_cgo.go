//go:build cgo

package replay

// This file owns a replay's reading of its file through FFmpeg's libavformat, libavcodec and
// libswscale: it demuxes the best video stream and hands on its packets as they are (H.264,
// H.265) or decoded and re-encoded to H.264 with libx264 (everything else libavcodec decodes).

/*
#cgo pkg-config: libavformat libavcodec libavutil libswscale
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

// Error codes Go compares against; cgo cannot evaluate the FFERRTAG macros itself.
enum {
	RP_EOF = AVERROR_EOF,
	RP_INVALIDDATA = AVERROR_INVALIDDATA,
	RP_STREAM_NOT_FOUND = AVERROR_STREAM_NOT_FOUND,
	RP_ENCODER_NOT_FOUND = AVERROR_ENCODER_NOT_FOUND,
	RP_ENOMEM = AVERROR(ENOMEM),
};

// A few damaged packets are skipped and counted; this many decoder failures in a row without a
// picture means the stream is unusable.
enum { RP_MAX_FAILS = 100 };

typedef struct {
	AVFormatContext *fmt;
	AVStream *st;
	AVPacket *pkt;
	// Transcoding only.
	AVCodecContext *dec, *enc;
	AVFrame *frame, *yuv;
	struct SwsContext *sws;
	int sws_w, sws_h, sws_fmt;
	int64_t next_pts;
	int64_t frame_ticks;
	int dec_done, enc_flushed, dec_failed;
	int64_t corrupt;
	// Video packets demuxed, and the latest end time of any stream's packet (AV_TIME_BASE units),
	// to tell a cut file from a clean end.
	int64_t packets;
	int64_t data_end;
} rp_media;

// rp_quiet keeps libav's own lines off stderr: every failure reaches the caller as an error,
// and a damaged file would otherwise flood the service's log around its logger.
static void rp_quiet(void) {
	av_log_set_level(AV_LOG_QUIET);
}

// rp_free accepts a partly opened media, so that every error path can end with it.
static void rp_free(rp_media *m) {
	if (!m)
		return;
	sws_freeContext(m->sws);
	av_frame_free(&m->yuv);
	av_frame_free(&m->frame);
	avcodec_free_context(&m->enc);
	avcodec_free_context(&m->dec);
	av_packet_free(&m->pkt);
	avformat_close_input(&m->fmt);
	av_free(m);
}

static rp_media *rp_alloc(void) {
	rp_media *m = av_mallocz(sizeof(*m));
	if (!m)
		return NULL;
	m->data_end = AV_NOPTS_VALUE;
	m->next_pts = AV_NOPTS_VALUE;
	m->pkt = av_packet_alloc();
	if (!m->pkt) {
		rp_free(m);
		return NULL;
	}
	return m;
}

static int rp_open_input(rp_media *m, const char *url) {
	AVDictionary *opts = NULL;
	// A playlist or concat script inside a file must not make the demuxer reach the network.
	av_dict_set(&opts, "protocol_whitelist", "file", 0);
	int ret = avformat_open_input(&m->fmt, url, NULL, &opts);
	av_dict_free(&opts);
	if (ret < 0)
		return ret;
	return avformat_find_stream_info(m->fmt, NULL);
}

// rp_note_end keeps the latest end time of any stream's packet. The other streams count too: a
// clean file's audio may outlast its video.
static void rp_note_end(rp_media *m) {
	AVPacket *p = m->pkt;
	int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
	if (ts == AV_NOPTS_VALUE)
		return;
	AVStream *st = m->fmt->streams[p->stream_index];
	int64_t end = av_rescale_q(av_sat_add64(ts, FFMAX(p->duration, 0)), st->time_base, AV_TIME_BASE_Q);
	if (end != AV_NOPTS_VALUE && (m->data_end == AV_NOPTS_VALUE || end > m->data_end))
		m->data_end = end;
}

// rp_covered reports in microseconds how far into the file the packets read so far reach.
static int rp_covered(rp_media *m, int64_t *us) {
	if (m->fmt->start_time == AV_NOPTS_VALUE || m->data_end == AV_NOPTS_VALUE)
		return 0;
	*us = av_sat_sub64(m->data_end, m->fmt->start_time);
	return 1;
}

// rp_read leaves the next packet of the video stream in m->pkt.
static int rp_read(rp_media *m) {
	av_packet_unref(m->pkt);
	for (;;) {
		int ret = av_read_frame(m->fmt, m->pkt);
		// The demuxer reports a failed read of the file as end of file; the I/O context keeps the cause.
		if (ret == AVERROR_EOF && m->fmt->pb && m->fmt->pb->error < 0)
			return m->fmt->pb->error;
		if (ret < 0)
			return ret;
		rp_note_end(m);
		if (m->pkt->stream_index == m->st->index) {
			m->packets++;
			return 0;
		}
		av_packet_unref(m->pkt);
	}
}

// rp_select_stream makes the best video stream the one read, and returns its index or an error.
static int rp_select_stream(rp_media *m) {
	int idx = av_find_best_stream(m->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	if (idx >= 0)
		m->st = m->fmt->streams[idx];
	return idx;
}

static int rp_open_decoder(rp_media *m) {
	AVCodecParameters *par = m->st->codecpar;
	const AVCodec *dc = avcodec_find_decoder(par->codec_id);
	if (!dc)
		return AVERROR_DECODER_NOT_FOUND;
	m->dec = avcodec_alloc_context3(dc);
	m->frame = av_frame_alloc();
	if (!m->dec || !m->frame)
		return AVERROR(ENOMEM);
	int ret = avcodec_parameters_to_context(m->dec, par);
	if (ret < 0)
		return ret;
	m->dec->pkt_timebase = m->st->time_base;
	m->dec->thread_count = 0;
	return avcodec_open2(m->dec, dc, NULL);
}

static int rp_open_encoder(rp_media *m, int threads, int gop, AVRational fps) {
	const AVCodec *ec = avcodec_find_encoder_by_name("libx264");
	if (!ec)
		return AVERROR_ENCODER_NOT_FOUND;
	m->enc = avcodec_alloc_context3(ec);
	m->yuv = av_frame_alloc();
	if (!m->enc || !m->yuv)
		return AVERROR(ENOMEM);
	AVCodecParameters *par = m->st->codecpar;
	// 4:2:0 needs even sizes.
	m->enc->width = FFMAX(par->width & ~1, 2);
	m->enc->height = FFMAX(par->height & ~1, 2);
	m->enc->pix_fmt = AV_PIX_FMT_YUV420P;
	m->enc->time_base = m->st->time_base;
	m->enc->framerate = fps;
	m->enc->sample_aspect_ratio = par->sample_aspect_ratio;
	m->enc->gop_size = gop;
	m->enc->max_b_frames = 0;
	// zerolatency slices each picture once per thread; a few threads keep the NAL unit count of
	// an access unit well under what RTP readers take.
	m->enc->thread_count = threads;
	// Parameter sets go into extradata, for the SDP; the Go side repeats them before each IDR.
	m->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	av_opt_set(m->enc->priv_data, "preset", "ultrafast", 0);
	av_opt_set(m->enc->priv_data, "tune", "zerolatency", 0);
	int ret = avcodec_open2(m->enc, ec, NULL);
	if (ret < 0)
		return ret;
	m->frame_ticks = FFMAX(av_rescale_q(1, av_inv_q(fps), m->st->time_base), 1);
	m->yuv->format = m->enc->pix_fmt;
	m->yuv->width = m->enc->width;
	m->yuv->height = m->enc->height;
	return av_frame_get_buffer(m->yuv, 0);
}

// rp_decode leaves the next decoded picture in m->frame. It returns 0, AVERROR_EOF after the last
// picture, or the error that ended the stream, with m->dec_failed set when the decoder gave up.
static int rp_decode(rp_media *m) {
	int fails = 0;
	for (;;) {
		int ret = avcodec_receive_frame(m->dec, m->frame);
		if (ret == 0)
			return 0;
		if (ret == AVERROR_EOF)
			return ret;
		if (ret != AVERROR(EAGAIN)) {
			m->corrupt++;
			if (++fails >= RP_MAX_FAILS) {
				m->dec_failed = 1;
				return ret;
			}
			continue;
		}
		if (m->dec_done)
			return AVERROR_EOF;
		ret = rp_read(m);
		if (ret == AVERROR_EOF) {
			m->dec_done = 1;
			avcodec_send_packet(m->dec, NULL);
			continue;
		}
		if (ret < 0)
			return ret;
		// An empty packet would tell the decoder that the stream has ended.
		if (!m->pkt->size)
			continue;
		ret = avcodec_send_packet(m->dec, m->pkt);
		if (ret < 0) {
			m->corrupt++;
			if (++fails >= RP_MAX_FAILS) {
				m->dec_failed = 1;
				return ret;
			}
		}
	}
}

// rp_convert puts m->frame into m->yuv at the encoder's size, with a pts the encoder accepts:
// libx264 needs them to increase, which damaged or variable-rate files do not promise.
static int rp_convert(rp_media *m) {
	AVFrame *fr = m->frame;
	if (!m->sws || fr->width != m->sws_w || fr->height != m->sws_h || fr->format != m->sws_fmt) {
		sws_freeContext(m->sws);
		m->sws = sws_getContext(fr->width, fr->height, fr->format, m->enc->width, m->enc->height,
		                        AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
		if (!m->sws)
			return AVERROR(EINVAL);
		m->sws_w = fr->width;
		m->sws_h = fr->height;
		m->sws_fmt = fr->format;
	}
	int ret = av_frame_make_writable(m->yuv);
	if (ret < 0)
		return ret;
	int h = sws_scale(m->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, m->yuv->data,
	                  m->yuv->linesize);
	if (h != m->enc->height)
		return AVERROR(EINVAL);
	int64_t pts = fr->best_effort_timestamp;
	if (pts == AV_NOPTS_VALUE || (m->next_pts != AV_NOPTS_VALUE && pts < m->next_pts))
		pts = m->next_pts != AV_NOPTS_VALUE ? m->next_pts + m->frame_ticks - 1 : 0;
	m->yuv->pts = pts;
	m->next_pts = pts + 1;
	m->yuv->pict_type = AV_PICTURE_TYPE_NONE;
	return 0;
}

// rp_transcode leaves the next H.264 packet in m->pkt: 0, AVERROR_EOF after the last one, or the
// error that ended the stream.
static int rp_transcode(rp_media *m) {
	av_packet_unref(m->pkt);
	for (;;) {
		int ret = avcodec_receive_packet(m->enc, m->pkt);
		if (ret != AVERROR(EAGAIN))
			return ret;
		if (m->enc_flushed)
			return AVERROR_EOF;
		ret = rp_decode(m);
		if (ret == AVERROR_EOF) {
			m->enc_flushed = 1;
			avcodec_send_frame(m->enc, NULL);
			continue;
		}
		if (ret < 0)
			return ret;
		ret = rp_convert(m);
		av_frame_unref(m->frame);
		if (ret < 0)
			return ret;
		if ((ret = avcodec_send_frame(m->enc, m->yuv)) < 0)
			return ret;
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// truncatedShare is the share of the frames or the length a container announced below which a
// clean end of stream is taken as a cut file; containers and demuxers disagree by a frame or two,
// never by a tenth.
const truncatedShare = 0.9

// maxEncoderThreads bounds libx264's threads, and so the slices of a picture (see rp_open_encoder).
const maxEncoderThreads = 4

var quietOnce sync.Once

// media reads one pass over a file. It is not safe for concurrent use.
type media struct {
	c    *C.rp_media
	path string
	info Info
	// codec is what is sent; extradata is its configuration: the file's for a stream sent as it is,
	// libx264's when transcoding.
	codec     codec
	extradata []byte
	tb        C.AVRational
	// start is the stream time that maps to 0; unknown until the first timestamp when the
	// container does not say.
	start      C.int64_t
	startKnown bool
	// checkFrames is set when Info.Frames is the container's own count, so that a shortfall means
	// the file was cut; announced is the length its header states (0 when libavformat guessed it).
	checkFrames bool
	announced   time.Duration
}

// openMedia opens path, picks its best video stream and prepares to send it.
func openMedia(path string) (*media, error) {
	// Stat first so that a missing file gives Go's own error, which errors.Is understands.
	st, err := os.Stat(path)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return nil, fmt.Errorf("open: %w", pe.Err)
	}
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open: %w: not a regular file", ErrNotVideo)
	}
	quietOnce.Do(func() { C.rp_quiet() })
	c := C.rp_alloc()
	if c == nil {
		return nil, fmt.Errorf("allocate: %w", avError(C.RP_ENOMEM))
	}
	m := &media{c: c, path: path}
	if err := m.open(); err != nil {
		C.rp_free(c)
		return nil, err
	}
	return m, nil
}

func (m *media) open() error {
	// The file: prefix keeps a colon in the path from being read as a protocol name.
	url := C.CString("file:" + m.path)
	defer C.free(unsafe.Pointer(url))
	if rc := C.rp_open_input(m.c, url); rc < 0 {
		if rc == C.RP_INVALIDDATA {
			return fmt.Errorf("open: %w (or a damaged one): %w", ErrNotVideo, avError(rc))
		}
		return fmt.Errorf("open: %w", avError(rc))
	}
	idx := C.rp_select_stream(m.c)
	if idx == C.RP_STREAM_NOT_FOUND {
		return fmt.Errorf("%w: no video stream", ErrNotVideo)
	}
	if idx < 0 {
		return fmt.Errorf("find video stream: %w", avError(idx))
	}
	st, par := m.c.st, m.c.st.codecpar
	name := C.GoString(C.avcodec_get_name(par.codec_id))
	// A cover picture in an audio file and text rendered as ANSI art both come out as a "video"
	// stream, but neither is footage.
	if st.disposition&C.AV_DISPOSITION_ATTACHED_PIC != 0 {
		return fmt.Errorf("%w: only a still picture", ErrNotVideo)
	}
	switch par.codec_id {
	case C.AV_CODEC_ID_ANSI, C.AV_CODEC_ID_BINTEXT, C.AV_CODEC_ID_XBIN, C.AV_CODEC_ID_IDF:
		return fmt.Errorf("%w: text (%s)", ErrNotVideo, name)
	}
	m.tb = st.time_base
	if st.start_time != C.AV_NOPTS_VALUE {
		m.start, m.startKnown = st.start_time, true
	}
	m.info = m.readInfo(name)
	switch par.codec_id {
	case C.AV_CODEC_ID_H264:
		m.codec = codecH264
		m.extradata = C.GoBytes(unsafe.Pointer(par.extradata), par.extradata_size)
	case C.AV_CODEC_ID_HEVC:
		m.codec = codecH265
		m.extradata = C.GoBytes(unsafe.Pointer(par.extradata), par.extradata_size)
	default:
		if err := m.openTranscoder(name); err != nil {
			return err
		}
	}
	m.info.Codec = m.codec.String()
	return nil
}

func (m *media) openTranscoder(name string) error {
	if C.avcodec_find_decoder(m.c.st.codecpar.codec_id) == nil {
		if tag := uint32(m.c.st.codecpar.codec_tag); tag != 0 {
			name += fmt.Sprintf(" (fourcc %q)", []byte{byte(tag), byte(tag >> 8), byte(tag >> 16), byte(tag >> 24)})
		}
		return fmt.Errorf("%w: no decoder for codec %s", ErrUnsupported, name)
	}
	if rc := C.rp_open_decoder(m.c); rc < 0 {
		return fmt.Errorf("%w: %s: open decoder: %w", ErrUnsupported, name, avError(rc))
	}
	fps := C.av_guess_frame_rate(m.c.fmt, m.c.st, nil)
	if fps.num <= 0 || fps.den <= 0 {
		fps = C.AVRational{num: 25, den: 1}
	}
	gop := max(int(math.Round(2*float64(fps.num)/float64(fps.den))), 1)
	threads := min(runtime.NumCPU(), maxEncoderThreads)
	if rc := C.rp_open_encoder(m.c, C.int(threads), C.int(gop), fps); rc < 0 {
		if rc == C.RP_ENCODER_NOT_FOUND {
			return fmt.Errorf("%w: %s needs transcoding, and this libavcodec has no libx264", ErrUnsupported, name)
		}
		return fmt.Errorf("%s: open libx264: %w", name, avError(rc))
	}
	m.info.Transcoded = true
	m.info.Width, m.info.Height = int(m.c.enc.width), int(m.c.enc.height)
	m.codec = codecH264
	m.extradata = C.GoBytes(unsafe.Pointer(m.c.enc.extradata), m.c.enc.extradata_size)
	m.tb = m.c.enc.time_base
	return nil
}

func (m *media) readInfo(name string) Info {
	st, fc := m.c.st, m.c.fmt
	info := Info{
		Source: name,
		Width:  int(st.codecpar.width),
		Height: int(st.codecpar.height),
	}
	if r := C.av_guess_frame_rate(fc, st, nil); r.num > 0 && r.den > 0 {
		info.FPS = float64(r.num) / float64(r.den)
	}
	ns := C.AVRational{num: 1, den: 1e9}
	switch {
	case st.duration > 0:
		info.Duration = time.Duration(C.av_rescale_q(st.duration, st.time_base, ns))
	case fc.duration > 0:
		info.Duration = time.Duration(C.av_rescale_q(fc.duration, C.AVRational{num: 1, den: C.AV_TIME_BASE}, ns))
	}
	if info.Duration < 0 { // av_rescale_q overflowed
		info.Duration = 0
	}
	if fc.duration > 0 && fc.duration_estimation_method == C.AVFMT_DURATION_FROM_STREAM {
		m.announced = time.Duration(fc.duration) * time.Microsecond
	}
	switch {
	case st.nb_frames > 0:
		info.Frames = int64(st.nb_frames)
		m.checkFrames = true
	case info.Duration > 0 && info.FPS > 0:
		info.Frames = int64(math.Round(info.Duration.Seconds() * info.FPS))
	}
	key := C.CString("creation_time")
	defer C.free(unsafe.Pointer(key))
	if e := C.av_dict_get(fc.metadata, key, nil, 0); e != nil {
		info.Created = parseCreated(C.GoString(e.value))
	}
	return info
}

// next returns the next packet to send, with times in 90 kHz units from the stream's start. It
// returns io.EOF after the last one, and an error instead when the file turns out cut short or
// unreadable.
func (m *media) next() (sample, error) {
	var rc C.int
	if m.info.Transcoded {
		rc = C.rp_transcode(m.c)
	} else {
		rc = C.rp_read(m.c)
	}
	if rc == C.RP_EOF {
		return sample{}, m.end()
	}
	if rc < 0 {
		step := "read packet"
		switch {
		case m.c.dec_failed != 0:
			step = fmt.Sprintf("decode (%d failures in a row)", C.RP_MAX_FAILS)
		case m.info.Transcoded:
			step = "transcode"
		}
		return sample{}, fmt.Errorf("%s after %d packets: %w", step, m.c.packets, avError(rc))
	}
	p := m.c.pkt
	s := sample{
		data:     C.GoBytes(unsafe.Pointer(p.data), p.size),
		key:      p.flags&C.AV_PKT_FLAG_KEY != 0,
		duration: m.ticks(p.duration),
	}
	if !m.startKnown {
		if p.pts != C.AV_NOPTS_VALUE {
			m.start, m.startKnown = p.pts, true
		} else if p.dts != C.AV_NOPTS_VALUE {
			m.start, m.startKnown = p.dts, true
		}
	}
	if p.pts != C.AV_NOPTS_VALUE {
		s.pts, s.hasPTS = m.ticks(p.pts-m.start), true
	}
	if p.dts != C.AV_NOPTS_VALUE {
		s.dts, s.hasDTS = m.ticks(p.dts-m.start), true
	}
	return s, nil
}

func (m *media) ticks(v C.int64_t) int64 {
	return int64(C.av_rescale_q(v, m.tb, C.AVRational{num: 1, den: clockRate}))
}

// corrupt counts the packets the decoder rejected when transcoding.
func (m *media) corrupt() int64 { return int64(m.c.corrupt) }

// end tells a clean end of stream from one that came early.
func (m *media) end() error {
	packets := int64(m.c.packets)
	if packets == 0 {
		return fmt.Errorf("%w: no video packet", ErrTruncated)
	}
	var us C.int64_t
	known := C.rp_covered(m.c, &us) != 0
	covered := time.Duration(us) * time.Microsecond
	if m.checkFrames && float64(packets) < truncatedShare*float64(m.info.Frames) {
		// Packets reaching as far as the missing frames would have mean the recorder dropped
		// frames: AVI counts the empty chunks written for them, and the demuxer skips those.
		promised := time.Duration(float64(m.info.Frames) / m.info.FPS * float64(time.Second))
		if !known || float64(covered) < truncatedShare*float64(promised) {
			return fmt.Errorf("%w: read %d of %d video packets", ErrTruncated, packets, m.info.Frames)
		}
	}
	if m.announced > 0 && known && float64(covered) < truncatedShare*float64(m.announced) {
		return fmt.Errorf("%w: data ends at %v of %v", ErrTruncated, covered, m.announced)
	}
	return io.EOF
}

func (m *media) close() {
	if m.c != nil {
		C.rp_free(m.c)
		m.c = nil
	}
}

// parseCreated reads creation_time as libavformat writes it (ISO 8601 in UTC) and as some muxers
// leave it (a space instead of the T, no zone).
func parseCreated(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// avErr is a libav error code.
type avErr C.int

func avError(code C.int) error { return avErr(code) }

func (e avErr) Error() string {
	var buf [C.AV_ERROR_MAX_STRING_SIZE]C.char
	C.av_strerror(C.int(e), &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}
