//go:build cgo

package decode

/*
#cgo pkg-config: libavformat libavcodec libavutil libswscale
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "convert.h"

// Error codes Go compares against; cgo cannot evaluate the FFERRTAG macros itself.
enum {
	VD_EOF = AVERROR_EOF,
	VD_INVALIDDATA = AVERROR_INVALIDDATA,
	VD_STREAM_NOT_FOUND = AVERROR_STREAM_NOT_FOUND,
	VD_ENOMEM = AVERROR(ENOMEM),
};

// Where vd_next failed, so that the Go error names the step.
enum { VD_READ = 1, VD_DECODE = 2 };

// A few damaged packets are concealed and counted; this many failures in a row without a
// picture means the stream is unusable.
enum { VD_MAX_FAILS = 100 };

typedef struct {
	AVFormatContext *fmt;
	AVStream *st;
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *frame;
	int64_t origin;
	int64_t data_end;
	int flushing;
	int failed;
	int64_t corrupt;
	vd_conv conv;
	char msg[256];
} vd_file;

// vd_current is the file whose demuxer this thread is running, for vd_log. Demuxers run on the
// calling thread; decoder threads and other libav users in the process never match it.
static _Thread_local vd_file *vd_current;

// vd_log keeps the demuxer's last error line in its file, because the error code alone says
// "Invalid data" where the log says "moov atom not found".
static void vd_log(void *avcl, int level, const char *fmt, va_list vl) {
	vd_file *f = vd_current;
	if (level > AV_LOG_ERROR || !f || !avcl || avcl != f->fmt)
		return;
	vsnprintf(f->msg, sizeof f->msg, fmt, vl);
	size_t n = strlen(f->msg);
	if (n > 0 && f->msg[n - 1] == '\n')
		f->msg[n - 1] = 0;
}

static void vd_log_init(void) {
	av_log_set_level(AV_LOG_ERROR);
	av_log_set_callback(vd_log);
}

// vd_free accepts a partly opened file, so that every error path can end with it.
static void vd_free(vd_file *f) {
	if (!f)
		return;
	vd_conv_free(&f->conv);
	av_frame_free(&f->frame);
	av_packet_free(&f->pkt);
	avcodec_free_context(&f->dec);
	avformat_close_input(&f->fmt);
	av_free(f);
}

static vd_file *vd_alloc(void) {
	vd_file *f = av_mallocz(sizeof(*f));
	if (!f)
		return NULL;
	f->origin = AV_NOPTS_VALUE;
	f->data_end = AV_NOPTS_VALUE;
	f->pkt = av_packet_alloc();
	f->frame = av_frame_alloc();
	if (!f->pkt || !f->frame) {
		vd_free(f);
		return NULL;
	}
	return f;
}

static int vd_open_input(vd_file *f, const char *url) {
	// Allocated here rather than by avformat_open_input so that vd_log knows it while it opens.
	f->fmt = avformat_alloc_context();
	if (!f->fmt)
		return AVERROR(ENOMEM);
	AVDictionary *opts = NULL;
	// A playlist or concat script inside a file must not make the demuxer reach the network.
	av_dict_set(&opts, "protocol_whitelist", "file", 0);
	vd_current = f;
	int ret = avformat_open_input(&f->fmt, url, NULL, &opts);
	vd_current = NULL;
	av_dict_free(&opts);
	return ret;
}

static int vd_find_stream_info(vd_file *f) {
	f->msg[0] = 0;
	vd_current = f;
	int ret = avformat_find_stream_info(f->fmt, NULL);
	vd_current = NULL;
	return ret;
}

static int vd_open_codec(vd_file *f, int index) {
	f->st = f->fmt->streams[index];
	const AVCodec *codec = avcodec_find_decoder(f->st->codecpar->codec_id);
	if (!codec)
		return AVERROR_DECODER_NOT_FOUND;
	f->dec = avcodec_alloc_context3(codec);
	if (!f->dec)
		return AVERROR(ENOMEM);
	int ret = avcodec_parameters_to_context(f->dec, f->st->codecpar);
	if (ret < 0)
		return ret;
	f->dec->pkt_timebase = f->st->time_base;
	f->dec->thread_count = 0;
	return avcodec_open2(f->dec, codec, NULL);
}

// vd_note_end keeps the latest end time of any stream's packet. The other streams count too: a
// clean file's audio may outlast its video.
static void vd_note_end(vd_file *f) {
	AVPacket *p = f->pkt;
	int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
	if (ts == AV_NOPTS_VALUE)
		return;
	AVStream *st = f->fmt->streams[p->stream_index];
	int64_t end = av_rescale_q(av_sat_add64(ts, FFMAX(p->duration, 0)), st->time_base, AV_TIME_BASE_Q);
	if (end != AV_NOPTS_VALUE && (f->data_end == AV_NOPTS_VALUE || end > f->data_end))
		f->data_end = end;
}

// vd_covered reports in microseconds how far into the file the packets read so far reach.
static int vd_covered(vd_file *f, int64_t *us) {
	if (f->fmt->start_time == AV_NOPTS_VALUE || f->data_end == AV_NOPTS_VALUE)
		return 0;
	*us = av_sat_sub64(f->data_end, f->fmt->start_time);
	return 1;
}

static int vd_read(vd_file *f) {
	for (;;) {
		f->msg[0] = 0;
		vd_current = f;
		int ret = av_read_frame(f->fmt, f->pkt);
		vd_current = NULL;
		// The demuxer reports a failed read of the file as end of file; the I/O context keeps the cause.
		if (ret == AVERROR_EOF && f->fmt->pb && f->fmt->pb->error < 0)
			return f->fmt->pb->error;
		if (ret < 0)
			return ret;
		vd_note_end(f);
		if (f->pkt->stream_index == f->st->index)
			return 0;
		av_packet_unref(f->pkt);
	}
}

// vd_next leaves the next decoded picture in f->frame. It returns 0, AVERROR_EOF after the last
// picture, or the error that ended the stream, with f->failed saying where.
static int vd_next(vd_file *f) {
	int fails = 0;
	for (;;) {
		int ret = avcodec_receive_frame(f->dec, f->frame);
		if (ret == 0) {
			if (f->frame->decode_error_flags || (f->frame->flags & AV_FRAME_FLAG_CORRUPT))
				f->corrupt++;
			return 0;
		}
		if (ret == AVERROR_EOF)
			return ret;
		if (ret != AVERROR(EAGAIN)) {
			f->corrupt++;
			if (++fails >= VD_MAX_FAILS) {
				f->failed = VD_DECODE;
				return ret;
			}
			continue;
		}
		if (f->flushing)
			return AVERROR_EOF;
		ret = vd_read(f);
		if (ret == AVERROR_EOF) {
			f->flushing = 1;
			avcodec_send_packet(f->dec, NULL);
			continue;
		}
		if (ret < 0) {
			f->failed = VD_READ;
			return ret;
		}
		// An empty packet would tell the decoder that the stream has ended.
		if (!f->pkt->size && !f->pkt->side_data_elems) {
			av_packet_unref(f->pkt);
			continue;
		}
		ret = avcodec_send_packet(f->dec, f->pkt);
		av_packet_unref(f->pkt);
		if (ret < 0) {
			f->corrupt++;
			if (++fails >= VD_MAX_FAILS) {
				f->failed = VD_DECODE;
				return ret;
			}
		}
	}
}

// vd_pts_ns gives the picture's time since the stream start in nanoseconds. It returns 0 when the
// picture has no usable timestamp.
static int vd_pts_ns(vd_file *f, int64_t *ns) {
	int64_t ts = f->frame->best_effort_timestamp;
	if (ts == AV_NOPTS_VALUE)
		return 0;
	if (f->origin == AV_NOPTS_VALUE)
		f->origin = f->st->start_time != AV_NOPTS_VALUE ? f->st->start_time : ts;
	// av_rescale_q answers AV_NOPTS_VALUE for an invalid time base or an overflow.
	*ns = av_rescale_q(av_sat_sub64(ts, f->origin), f->st->time_base, (AVRational){1, 1000000000});
	return *ns != AV_NOPTS_VALUE;
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
	"sync"
	"time"
	"unsafe"

	"github.com/vigilcam/vigil/ingest"
)

// truncatedShare is the share of the frames or the length a container announced below which a clean
// end of stream is taken as a cut file; containers and decoders disagree by a frame or two, never by
// a tenth.
const truncatedShare = 0.9

// File decodes one video file. It is not safe for concurrent use.
type File struct {
	c      *C.vd_file
	path   string
	opts   Options
	info   Info
	origin time.Time
	// checkFrames is set when Info.Frames is the container's own count, so that a shortfall means
	// the file was cut. Duration*FPS is no such promise: variable frame rates and audio that
	// outlasts the video both leave clean files well short of it.
	checkFrames bool
	// announced is the file's length as its header states it; 0 when libavformat had to guess it
	// from the bitrate or the last timestamps, which a cut file shortens too.
	announced time.Duration

	seq, decoded int64
	last         time.Duration
	sample       sampler
	err          error
}

var logOnce sync.Once

// quietLibav takes over libav's log for the process, once: every failure reaches callers as an
// error, and libav's own stderr lines would bypass the service's logger and flood it on damaged
// input.
func quietLibav() { logOnce.Do(func() { C.vd_log_init() }) }

// OpenFile opens a video file and prepares its best video stream for decoding.
func OpenFile(path string, opts Options) (*File, error) {
	if opts.FPS < 0 || math.IsNaN(opts.FPS) || math.IsInf(opts.FPS, 0) {
		return nil, fmt.Errorf("decode %s: options: FPS %v is not a rate", path, opts.FPS)
	}
	// Stat first so that a missing file gives Go's own error, which errors.Is understands.
	st, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, &fs.PathError{Op: "open", Path: path, Err: pe.Err}
		}
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("decode %s: open: not a regular file", path)
	}
	quietLibav()

	c := C.vd_alloc()
	if c == nil {
		return nil, fmt.Errorf("decode %s: allocate: %w", path, &avError{code: C.VD_ENOMEM})
	}
	f := &File{c: c, path: path, opts: opts, origin: time.Now()}
	if err := f.open(); err != nil {
		C.vd_free(c)
		return nil, err
	}
	if !f.info.Created.IsZero() {
		f.origin = f.info.Created
	}
	f.sample = newSampler(opts.FPS)
	return f, nil
}

func (f *File) open() error {
	// The file: prefix keeps a colon in the path from being read as a protocol name.
	url := C.CString("file:" + f.path)
	defer C.free(unsafe.Pointer(url))
	if rc := C.vd_open_input(f.c, url); rc < 0 {
		if rc == C.VD_INVALIDDATA {
			return fmt.Errorf("decode %s: open: not a video file, or a damaged one: %w", f.path, f.avError(rc))
		}
		return fmt.Errorf("decode %s: open: %w", f.path, f.avError(rc))
	}
	if rc := C.vd_find_stream_info(f.c); rc < 0 {
		return fmt.Errorf("decode %s: find stream info: %w", f.path, f.avError(rc))
	}
	// The demuxer's last complaint while opening does not explain what fails after it.
	f.c.msg[0] = 0
	idx := C.av_find_best_stream(f.c.fmt, C.AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
	if idx == C.VD_STREAM_NOT_FOUND {
		return fmt.Errorf("decode %s: not a video file: no video stream", f.path)
	}
	if idx < 0 {
		return fmt.Errorf("decode %s: find video stream: %w", f.path, f.avError(idx))
	}
	if rc := C.vd_open_codec(f.c, idx); rc < 0 {
		return fmt.Errorf("decode %s: open decoder: %w", f.path, f.avError(rc))
	}
	st := f.c.st
	// A cover picture in an audio file and text rendered as ANSI art both come out as a
	// "video" stream, but neither is footage.
	if st.disposition&C.AV_DISPOSITION_ATTACHED_PIC != 0 {
		return fmt.Errorf("decode %s: not a video file: only a still picture", f.path)
	}
	switch st.codecpar.codec_id {
	case C.AV_CODEC_ID_ANSI, C.AV_CODEC_ID_BINTEXT, C.AV_CODEC_ID_XBIN, C.AV_CODEC_ID_IDF:
		return fmt.Errorf("decode %s: not a video file: text (%s)", f.path,
			C.GoString(C.avcodec_get_name(st.codecpar.codec_id)))
	}
	f.info = f.readInfo()
	return nil
}

func (f *File) readInfo() Info {
	st, fc := f.c.st, f.c.fmt
	info := Info{
		Codec:  C.GoString(C.avcodec_get_name(st.codecpar.codec_id)),
		Width:  int(f.c.dec.width),
		Height: int(f.c.dec.height),
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
		f.announced = time.Duration(fc.duration) * time.Microsecond
	}
	switch {
	case st.nb_frames > 0:
		info.Frames = int64(st.nb_frames)
		f.checkFrames = true
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

// parseCreated reads creation_time as libavformat writes it (ISO 8601 in UTC) and as some muxers
// leave it (a space instead of the T, no zone).
func parseCreated(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// Info describes the file as its container announces it.
func (f *File) Info() Info { return f.info }

// Decoded reports how many frames have been decoded so far, passed on or not.
func (f *File) Decoded() int64 { return f.decoded }

// Next decodes until the next frame to pass on and returns it with a freshly allocated BGR buffer
// that the caller keeps. It returns io.EOF after the last frame, and an error instead when the file
// turns out damaged or cut short.
func (f *File) Next() (ingest.Frame, error) {
	if f.c == nil {
		return ingest.Frame{}, fmt.Errorf("decode %s: next: %w", f.path, fs.ErrClosed)
	}
	if f.err != nil {
		return ingest.Frame{}, f.err
	}
	for {
		rc := C.vd_next(f.c)
		if rc == C.VD_EOF {
			f.err = f.end()
			return ingest.Frame{}, f.err
		}
		if rc < 0 {
			step := "read packet"
			if f.c.failed == C.VD_DECODE {
				step = fmt.Sprintf("decode (%d failures in a row)", C.VD_MAX_FAILS)
			}
			f.err = fmt.Errorf("decode %s: %s after %d frames: %w", f.path, step, f.decoded, f.avError(rc))
			return ingest.Frame{}, f.err
		}
		f.decoded++
		pts := f.pts()
		if !f.sample.due(pts) {
			continue
		}
		fr, err := f.frame(pts)
		if err != nil {
			f.err = err
		}
		return fr, err
	}
}

// end tells a clean end of stream from one that came early.
func (f *File) end() error {
	corrupt := int64(f.c.corrupt)
	if f.decoded == 0 {
		return fmt.Errorf("decode %s: no frame decoded (%d corrupt packets)", f.path, corrupt)
	}
	var us C.int64_t
	known := C.vd_covered(f.c, &us) != 0
	covered := float64(us) * float64(time.Microsecond)
	if f.checkFrames && float64(f.decoded) < truncatedShare*float64(f.info.Frames) {
		// Packets reaching as far as the missing frames would have mean the recorder dropped
		// frames: AVI counts the empty chunks written for them, and the demuxer skips those.
		promised := seconds(float64(f.info.Frames) / f.info.FPS)
		if !known || covered < truncatedShare*float64(promised) {
			return fmt.Errorf("decode %s: truncated: decoded %d of %d frames (%d corrupt packets)",
				f.path, f.decoded, f.info.Frames, corrupt)
		}
	}
	if f.announced > 0 && known && covered < truncatedShare*float64(f.announced) {
		return fmt.Errorf("decode %s: truncated: data ends at %v of %v (decoded %d frames, %d corrupt packets)",
			f.path, time.Duration(covered), f.announced, f.decoded, corrupt)
	}
	return io.EOF
}

// pts keeps stream time moving forward even where the container's timestamps are missing or go back.
func (f *File) pts() time.Duration {
	var ns C.int64_t
	pts := f.last
	switch {
	case C.vd_pts_ns(f.c, &ns) != 0:
		pts = time.Duration(ns)
	case f.decoded > 1 && f.info.FPS > 0:
		pts = f.last + seconds(1/f.info.FPS)
	}
	if pts < f.last {
		pts = f.last
	}
	f.last = pts
	return pts
}

func (f *File) frame(pts time.Duration) (ingest.Frame, error) {
	if rc := C.vd_conv_scale(&f.c.conv, f.c.frame); rc < 0 {
		return ingest.Frame{}, fmt.Errorf("decode %s: convert frame %d (%s, %dx%d) to BGR: %w", f.path, f.decoded,
			C.GoString(C.av_get_pix_fmt_name(int32(f.c.frame.format))), f.c.frame.width, f.c.frame.height, f.avError(rc))
	}
	w, h, bgr := packBGR(&f.c.conv)
	fr := ingest.Frame{Seq: f.seq, Width: w, Height: h, BGR: bgr, PTS: pts, Wall: f.origin.Add(pts)}
	f.seq++
	return fr, nil
}

// Close frees the decoder. It is safe to call twice.
func (f *File) Close() error {
	if f.c != nil {
		C.vd_free(f.c)
		f.c = nil
	}
	return nil
}

// avError is a libav error code, with the demuxer's explanation where it logged one.
type avError struct {
	code   C.int
	detail string
}

func (f *File) avError(code C.int) error {
	return &avError{code: code, detail: C.GoString(&f.c.msg[0])}
}

func (e *avError) Error() string {
	var buf [C.AV_ERROR_MAX_STRING_SIZE]C.char
	C.av_strerror(e.code, &buf[0], C.size_t(len(buf)))
	if e.detail != "" {
		return C.GoString(&buf[0]) + ": " + e.detail
	}
	return C.GoString(&buf[0])
}
