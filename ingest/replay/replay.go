// Package replay serves video files as RTSP streams (RFC 2326) from an in-process server on
// loopback, so that an uploaded file is read by the same RTSP source as a live camera.
//
// H.264 and H.265 are sent as they are, in the RTP payload formats of RFC 6184 and RFC 7798, with
// their parameter sets in the SDP and again before every random access unit. Anything else that
// libavcodec decodes is re-encoded to H.264 with libx264, frame for frame, with the same timestamps.
// RTP timestamps are the file's presentation times at 90 kHz; RTCP sender reports map them to the
// wall clock of the recording.
//
// A replay is lossless by default: it starts when its reader sends PLAY and keeps a small window of
// access units ahead of the reader's acknowledgements (Replay.Ack), so it runs as fast as the
// pipeline accepts frames, and no faster. A real-time replay (Options.RealTime) writes at the file's
// own pace to any number of readers, and can loop: a simulated camera for tests and benchmarks.
//
// Without cgo the package still builds, and Server.Open returns ErrNoCgo.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// clockRate is the RTP clock of video (RFC 6184 §8.2.1, RFC 7798 §7.1).
const clockRate = 90000

// Defaults and fixed settings.
const (
	defaultWindow = 8
	// keepalivePeriod is how often a lossless replay that waits for its reader sends an RTCP
	// packet: a pipeline busy for longer than the reader's read timeout (gortsplib: 10 s) must
	// not look like a dead server.
	keepalivePeriod = time.Second
)

var (
	// ErrInvalidOption is returned by Open for options out of range.
	ErrInvalidOption = errors.New("invalid option")
	// ErrNotVideo is returned by Open for a file that holds no video: text, audio, a still picture.
	ErrNotVideo = errors.New("not a video file")
	// ErrUnsupported is returned by Open for video this libavcodec cannot decode or re-encode.
	ErrUnsupported = errors.New("unsupported video")
	// ErrTruncated is returned by Open or Run for a file whose data ends before its header says.
	ErrTruncated = errors.New("truncated")
	// ErrReaderLeft is returned by Run when the reader of a lossless replay ends its session
	// before every access unit was acknowledged.
	ErrReaderLeft = errors.New("reader left")
	// ErrClosed is returned for a replay or server that has been closed.
	ErrClosed = errors.New("closed")
	// ErrNoCgo is returned by Open in a build without cgo, which cannot reach libavformat.
	ErrNoCgo = errors.New("vigil was built without cgo, so it cannot replay video files: " +
		"build it with CGO_ENABLED=1 and the libavformat, libavcodec, libavutil and libswscale " +
		"development packages installed (Debian: libavformat-dev libavcodec-dev libavutil-dev libswscale-dev)")
)

// Options says how a replay is paced.
type Options struct {
	// RealTime writes access units at the file's own pace from the moment Run starts, to every
	// reader or to none, without acknowledgements: a simulated live camera, readable by any RTSP
	// client. Its RTCP wall clock starts when Run starts, as a live camera's would. It defaults to
	// false: a lossless replay, paced by Ack, whose wall clock is the file's creation_time.
	RealTime bool
	// Loop starts the file over at its end, with RTP timestamps and wall clock that keep
	// increasing. It needs RealTime. It defaults to false.
	Loop bool
	// Window is how many access units a lossless replay writes ahead of its reader's
	// acknowledgements. It defaults to 8.
	Window int
	// Name, when set, serves the replay at /replay/<Name> rather than at a random token, so that a
	// simulated camera keeps its URL when its server is restarted. Letters, digits, - and _ only.
	// It defaults to "".
	Name string
}

// Info describes a replay's file and what is sent of it.
type Info struct {
	// Codec is what is sent: "h264" or "h265".
	Codec string
	// Source is the file's video codec, e.g. "h264", "msmpeg4v3".
	Source string
	// Transcoded is set when Source is re-encoded to H.264 rather than sent as it is.
	Transcoded bool
	// Width and Height are the picture size sent, in pixels.
	Width, Height int
	// FPS is the nominal frame rate; 0 when unknown.
	FPS float64
	// Duration is the length of the video stream; 0 when unknown.
	Duration time.Duration
	// Frames is the number of access units a pass should send, from the container or from
	// Duration*FPS; 0 when unknown.
	Frames int64
	// Created is the file's creation_time tag; zero when absent. A lossless replay's wall clock
	// starts there, or at Open when it is zero.
	Created time.Time
}

// Progress counts what a replay has done so far.
type Progress struct {
	// Written access units were handed to the stream, Acked of them acknowledged by the reader.
	Written, Acked int64
	// Corrupt packets were damaged and skipped: their NAL units did not frame, or the decoder
	// rejected them when transcoding.
	Corrupt int64
	// Skipped packets were sound but not sent: empty, or before the first random access unit of
	// a pass, which a reader could not decode.
	Skipped int64
	// Loops counts the passes over the file completed and started over.
	Loops int64
}

// sample is one packet of a pass, with its times in 90 kHz units from the stream's start.
type sample struct {
	data           []byte
	key            bool
	pts, dts       int64
	hasPTS, hasDTS bool
	duration       int64
}

// accessUnit is what one RTP marker closes: NAL units and their times on the replay's timeline.
type accessUnit struct {
	units    [][]byte
	pts, dts int64
}

// packetizer is the RTP payload encoder of the codec sent.
type packetizer interface {
	Encode(au [][]byte) ([]*rtp.Packet, error)
}

// Replay serves one file at one unguessable URL. Run writes it; Close ends it.
type Replay struct {
	srv    *Server
	path   string
	file   string
	opts   Options
	info   Info
	stream *gortsplib.ServerStream
	media  *description.Media
	enc    packetizer
	// rtpBase is the RTP timestamp of time 0; origin the wall clock of time 0 (lossless).
	rtpBase uint32
	origin  time.Time

	// Owned by Run once it starts; Close frees src when Run never did.
	src   *media
	fr    framer
	tl    timeline
	first *accessUnit
	// corrupt counts the framing errors of all passes and the decoder rejections of the passes
	// before the current one.
	corrupt int64

	closing chan struct{} // closed by Close
	played  chan struct{} // closed when the lossless reader's PLAY has been answered
	left    chan struct{} // closed when the lossless reader's session ends after PLAY
	acks    chan struct{} // signalled by Ack
	runDone chan struct{} // closed when Run returns

	mu      sync.Mutex
	reader  *gortsplib.ServerSession
	started bool
	running bool
	closed  bool
	prog    Progress
	// inflight holds the RTP packet count of each written, unacknowledged access unit, oldest
	// first; inflightPackets is their sum.
	inflight        []int
	inflightPackets int

	playOnce, leftOnce, closeOnce sync.Once
}

// URL is where readers find the replay: rtsp://127.0.0.1:port/replay/token.
func (r *Replay) URL() string { return "rtsp://" + r.srv.host + r.path }

// Info describes the file and what is sent of it.
func (r *Replay) Info() Info { return r.info }

// Progress reports how far the replay has come.
func (r *Replay) Progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prog
}

// Ack tells a lossless replay that its reader has consumed n access units in total, counting
// from the first one it received; the reader acknowledges after its pipeline accepted a frame,
// and must count an access unit it could not decode as consumed too. Acks may arrive out of
// order: the highest counts. Ack has no effect on a real-time replay.
func (r *Replay) Ack(n int64) {
	if r.opts.RealTime {
		return
	}
	r.mu.Lock()
	n = min(n, r.prog.Written)
	for r.prog.Acked < n {
		r.inflightPackets -= r.inflight[0]
		r.inflight = r.inflight[1:]
		r.prog.Acked++
	}
	r.mu.Unlock()
	select {
	case r.acks <- struct{}{}:
	default:
	}
}

// Run writes the file's access units. A lossless replay waits for its reader's PLAY and returns
// nil once every access unit has been written and acknowledged; a real-time one returns nil at
// the end of the file, or never when it loops. It returns an error when ctx ends, Close is called,
// the reader leaves, or the file turns out damaged beyond skipping a packet. Run may be called
// once.
func (r *Replay) Run(ctx context.Context) (err error) {
	if err := r.begin(); err != nil {
		return fmt.Errorf("replay %s: run: %w", r.file, err)
	}
	defer r.end()
	// Run is where libav's output meets Go code that indexes into it; a bug there must end this
	// replay, not the process.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("replay %s: panic after %d access units: %v", r.file, r.Progress().Written, p)
		}
	}()
	if err := r.run(ctx); err != nil {
		return fmt.Errorf("replay %s: %w", r.file, err)
	}
	return nil
}

func (r *Replay) begin() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case r.started:
		return errors.New("already run")
	}
	r.started, r.running = true, true
	return nil
}

func (r *Replay) end() {
	if r.src != nil {
		r.src.close()
		r.src = nil
	}
	r.mu.Lock()
	r.running = false
	r.mu.Unlock()
	close(r.runDone)
}

func (r *Replay) run(ctx context.Context) error {
	if !r.opts.RealTime {
		select {
		case <-r.played:
		case <-ctx.Done():
			return fmt.Errorf("wait for a reader: %w", ctx.Err())
		case <-r.closing:
			return fmt.Errorf("wait for a reader: %w", ErrClosed)
		}
	}
	start := time.Now()
	if r.opts.RealTime {
		r.origin = start
	}
	au, firstDTS := r.first, r.first.dts
	for {
		if au == nil {
			var err error
			if au, err = r.read(); errors.Is(err, io.EOF) {
				if !r.opts.RealTime {
					return r.await(ctx, 0, "wait for the last acknowledgements")
				}
				if !r.opts.Loop {
					return nil
				}
				if err := r.restart(); err != nil {
					return err
				}
				continue
			} else if err != nil {
				return err
			}
		}
		pkts, err := r.enc.Encode(au.units)
		if err != nil {
			return fmt.Errorf("packetize access unit %d: %w", r.Progress().Written, err)
		}
		if r.opts.RealTime {
			if err := r.sleep(ctx, start.Add(ticksToDuration(au.dts-firstDTS))); err != nil {
				return err
			}
		} else if err := r.await(ctx, len(pkts), "wait for acknowledgements"); err != nil {
			return err
		}
		if err := r.write(au, pkts); err != nil {
			return err
		}
		au = nil
	}
}

// read returns the next access unit of the pass, skipping and counting the packets that cannot
// be sent.
func (r *Replay) read() (*accessUnit, error) {
	for {
		s, err := r.src.next()
		r.mu.Lock()
		r.prog.Corrupt = r.corrupt + r.src.corrupt()
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		units, err := r.fr.accessUnit(s.data, s.key)
		if err == nil {
			pts, dts := r.tl.place(s)
			return &accessUnit{units: units, pts: pts, dts: dts}, nil
		}
		r.mu.Lock()
		if len(s.data) == 0 || errors.Is(err, errUnsynced) {
			r.prog.Skipped++
		} else {
			r.corrupt++
			r.prog.Corrupt++
		}
		r.mu.Unlock()
	}
}

// restart begins the next pass over the file. A fresh demuxer (and transcoder) makes the pass
// start with a random access unit, as the first did.
func (r *Replay) restart() error {
	r.corrupt += r.src.corrupt()
	r.src.close()
	r.src = nil
	src, err := openMedia(r.file)
	if err != nil {
		return fmt.Errorf("loop %d: %w", r.Progress().Loops+1, err)
	}
	r.src = src
	r.fr.synced = false
	r.tl.nextPass()
	r.mu.Lock()
	r.prog.Loops++
	r.mu.Unlock()
	return nil
}

// await blocks a lossless replay until its reader has acknowledged enough: until packets more
// RTP packets fit its window, or, with packets 0, until it has acknowledged everything.
func (r *Replay) await(ctx context.Context, packets int, doing string) error {
	if r.room(packets) {
		return nil
	}
	keepalive := time.NewTicker(keepalivePeriod)
	defer keepalive.Stop()
	for {
		select {
		case <-r.acks:
			if r.room(packets) {
				return nil
			}
		case <-keepalive.C:
			if err := r.keepalive(); err != nil {
				return fmt.Errorf("%s: keepalive: %w", doing, err)
			}
		case <-r.left:
			// A reader may hang up as soon as it has acknowledged the last access unit.
			if packets == 0 && r.room(0) {
				return nil
			}
			p := r.Progress()
			return fmt.Errorf("%s: %w after acknowledging %d of %d access units", doing, ErrReaderLeft, p.Acked, p.Written)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", doing, ctx.Err())
		case <-r.closing:
			return fmt.Errorf("%s: %w", doing, ErrClosed)
		}
	}
}

// room reports whether an access unit of packets RTP packets may be written now (or, with
// packets 0, whether everything written has been acknowledged). Besides the window, the packets
// not yet acknowledged must fit the reader's write queue, which drops what overflows: an
// acknowledged access unit has left the queue, since the reader received it. A lone access unit
// always fits (see writeQueueSize).
func (r *Replay) room(packets int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if packets == 0 {
		return r.prog.Acked == r.prog.Written
	}
	return r.prog.Written-r.prog.Acked < int64(r.opts.Window) &&
		(r.inflightPackets == 0 || r.inflightPackets+packets <= writeQueueSize-writeQueueSpare)
}

// keepalive sends an RTCP source description, which readers take as a sign of life and
// otherwise ignore. A sender report would do too, but would move the reader's wall clock.
func (r *Replay) keepalive() error {
	var ssrc uint32
	for _, f := range r.stream.Stats().Medias[r.media].Formats {
		ssrc = f.LocalSSRC
	}
	return r.stream.WritePacketRTCP(r.media, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: ssrc,
		Items:  []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "vigil-replay"}},
	}}})
}

// sleep waits until a real-time replay is due to write.
func (r *Replay) sleep(ctx context.Context, due time.Time) error {
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.closing:
		return ErrClosed
	}
}

// write counts the access unit before its packets go out: the reader may acknowledge it before
// the last WritePacketRTPWithNTP returns, and Ack ignores counts beyond what was written.
func (r *Replay) write(au *accessUnit, pkts []*rtp.Packet) error {
	r.mu.Lock()
	n := r.prog.Written
	r.prog.Written++
	if !r.opts.RealTime {
		r.inflight = append(r.inflight, len(pkts))
		r.inflightPackets += len(pkts)
	}
	r.mu.Unlock()
	ts := r.rtpBase + uint32(au.pts)
	ntp := r.origin.Add(ticksToDuration(au.pts))
	for _, pkt := range pkts {
		pkt.Timestamp = ts
		if err := r.stream.WritePacketRTPWithNTP(r.media, pkt, ntp); err != nil {
			return fmt.Errorf("write access unit %d: %w", n, err)
		}
	}
	return nil
}

// Close ends the replay: new readers are refused, Run returns, and the sessions of current
// readers end. It is safe to call twice.
func (r *Replay) Close() error {
	r.closeOnce.Do(func() {
		close(r.closing)
		r.srv.remove(r)
		r.mu.Lock()
		r.closed = true
		running, started := r.running, r.started
		r.mu.Unlock()
		if running {
			<-r.runDone
		} else if !started {
			r.src.close()
			r.src = nil
		}
		r.stream.Close()
	})
	return nil
}

// timeline places a pass's samples on the replay's 90 kHz clock, which starts at 0 and keeps
// increasing from pass to pass.
type timeline struct {
	// offset is where the current pass starts; end is how far it reaches so far, from time 0 of
	// the pass.
	offset, end int64
	// frame is one frame at the nominal rate, the length of a sample that does not say.
	frame int64
}

// place returns a sample's presentation and decoding times. A sample without timestamps (raw
// elementary streams have none) starts where the ones before it end.
func (t *timeline) place(s sample) (pts, dts int64) {
	switch {
	case s.hasPTS:
		pts = s.pts
	case s.hasDTS:
		pts = s.dts
	default:
		pts = t.end
	}
	dts = pts
	if s.hasDTS {
		dts = s.dts
	}
	d := s.duration
	if d <= 0 {
		d = t.frame
	}
	t.end = max(t.end, pts+d)
	return t.offset + pts, t.offset + dts
}

// nextPass starts the next pass where the current one ends.
func (t *timeline) nextPass() {
	t.offset += t.end
	t.end = 0
}

// ticksToDuration converts 90 kHz ticks without overflowing for the first 292 years.
func ticksToDuration(ticks int64) time.Duration {
	return time.Duration(ticks/clockRate)*time.Second + time.Duration(ticks%clockRate)*time.Second/clockRate
}
