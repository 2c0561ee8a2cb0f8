// Package rtsp reads cameras and replayed files over RTSP (RFC 2326) with gortsplib: one attempt
// at a time connects, picks the H.264 or H.265 video track, depacketizes RTP (RFC 6184, RFC 7798)
// into access units and decodes them through libavcodec. Retrying is the supervisor's business.
package rtsp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/decode"
)

// ErrNoVideo is returned when a stream has no H.264 or H.265 track.
var ErrNoVideo = errors.New("no H.264 or H.265 video track")

// Config configures a Source.
type Config struct {
	// URL is the stream, credentials (basic or digest) in its user info.
	URL string
	// Transport is "auto" (UDP, then TCP when UDP gets nothing or is refused), "udp" or "tcp".
	// It defaults to "auto".
	Transport string
	// FPS is the analysis rate; 0 passes every frame. It defaults to 0.
	FPS float64
	// KeyframesOnly decodes only random access units. It defaults to false.
	KeyframesOnly bool
	// Timeout bounds connecting and every read; a stream silent this long has failed. It defaults
	// to 10s.
	Timeout time.Duration
}

// Stats counts what one attempt decoded.
type Stats struct {
	// Decoded pictures, whether passed on or not.
	Decoded int64
	// Skipped access units: before the first random access unit, or non-key in keyframes-only mode.
	Skipped int64
	// Corrupt access units the decoder refused, and RTP packets lost on the way.
	Corrupt, Lost int64
}

// Source is one attempt at reading a stream.
type Source struct {
	cfg      Config
	u        *base.URL
	redacted string
	secret   string

	mu    sync.Mutex
	stats Stats
}

// New checks cfg and returns a source ready to Run.
func New(cfg Config) (*Source, error) {
	if cfg.Transport == "" {
		cfg.Transport = "auto"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	s := &Source{cfg: cfg, redacted: Redact(cfg.URL)}
	u, err := base.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %w", s.redacted, scrub(err, cfg.URL))
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return nil, fmt.Errorf("camera %s: scheme %q is not rtsp or rtsps", s.redacted, u.Scheme)
	}
	if u.User != nil {
		s.secret, _ = u.User.Password()
	}
	switch cfg.Transport {
	case "auto", "udp", "tcp":
	default:
		return nil, fmt.Errorf("camera %s: transport %q is not auto, udp or tcp", s.redacted, cfg.Transport)
	}
	s.u = u
	return s, nil
}

// Attempt returns the supervisor's attempt at the stream: a new Source each time, so that nothing
// of a failed connection carries over.
func Attempt(cfg Config) ingest.Attempt {
	return func(ctx context.Context, h ingest.Handler) error {
		s, err := New(cfg)
		if err != nil {
			return err
		}
		return s.Run(ctx, h)
	}
}

// Stats returns what the attempt has decoded so far; it is safe to call while Run runs.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run connects and streams frames to h until the stream fails or ends, or ctx is done. It always
// returns an error saying why it stopped (ctx.Err() after a cancel); frames the decoder still held
// are handed on first. Credentials never appear in the error.
func (s *Source) Run(ctx context.Context, h ingest.Handler) error {
	err := s.run(ctx, h)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("camera %s: %w", s.redacted, scrub(err, s.secret))
}

func (s *Source) run(ctx context.Context, h ingest.Handler) error {
	c := &gortsplib.Client{
		Scheme:       s.u.Scheme,
		Host:         s.u.Host,
		ReadTimeout:  s.cfg.Timeout,
		WriteTimeout: s.cfg.Timeout,
	}
	switch s.cfg.Transport {
	case "udp":
		t := gortsplib.TransportUDP
		c.Transport = &t
	case "tcp":
		t := gortsplib.TransportTCP
		c.Transport = &t
	}
	var lost struct {
		sync.Mutex
		n int64
	}
	c.OnPacketsLost = func(n uint64) {
		lost.Lock()
		lost.n += int64(n)
		lost.Unlock()
	}
	c.OnDecodeError = func(error) {} // counted through the decoder's view of damaged units
	// Falling back from UDP to TCP is the automatic transport working, not news for the log.
	c.OnTransportSwitch = func(error) {}
	if err := c.Start2(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()

	desc, _, err := c.Describe(s.u)
	if err != nil {
		return fmt.Errorf("describe: %w", explain(err))
	}
	t, err := pickTrack(desc)
	if err != nil {
		return err
	}
	dec, err := decode.NewStream(t.codec, t.params, decode.StreamOptions{FPS: s.cfg.FPS, KeyframesOnly: s.cfg.KeyframesOnly})
	if err != nil {
		return err
	}
	defer dec.Close()
	rtpDec, err := t.depacketizer()
	if err != nil {
		return fmt.Errorf("%s depacketizer: %w", t.codec, err)
	}
	if _, err := c.Setup(desc.BaseURL, t.media, 0, 0); err != nil {
		return fmt.Errorf("setup: %w", explain(err))
	}

	var (
		failed    error // set in the packet callback when the decoder gives up
		streaming bool
		lastWall  time.Time
		clock     = float64(t.format.ClockRate())
	)
	emit := func(frames []ingest.Frame) {
		for _, f := range frames {
			if !streaming {
				streaming = true
				h.Streaming()
			}
			// The first sender report moves the clock from arrival time to the camera's own, which
			// may be behind: hold it until the camera's clock catches up, never go back.
			if f.Wall.Before(lastWall) {
				f.Wall = lastWall
			}
			lastWall = f.Wall
			h.Frame(f)
		}
	}
	c.OnPacketRTP(t.media, t.format, func(pkt *rtp.Packet) {
		if failed != nil {
			return
		}
		// Timing starts at the first packet of a random access unit; what comes before cannot be
		// decoded anyway, but still counts as an access unit for a paced replay.
		ticks, timed := c.PacketPTS2(t.media, pkt)
		au, err := rtpDec.decode(pkt)
		if err != nil || au == nil {
			return // more packets needed, or a damaged one: the depacketizer resyncs by itself
		}
		if timed {
			// RTCP sender reports give the camera's own clock; until the first arrives, arrival time.
			wall, ok := c.PacketNTP(t.media, pkt)
			if !ok {
				wall = time.Now()
			}
			frames, err := dec.Decode(au, time.Duration(float64(ticks)/clock*float64(time.Second)), wall)
			s.record(dec, &lost.Mutex, &lost.n)
			emit(frames)
			if err != nil {
				failed = err
				go c.Close()
			}
		}
		h.AccessUnit()
	})
	if _, err := c.Play(nil); err != nil {
		return fmt.Errorf("play: %w", explain(err))
	}
	err = c.Wait()
	// The packet callback has returned for good once Wait has: the decoder is ours again.
	frames, ferr := dec.Flush()
	s.record(dec, &lost.Mutex, &lost.n)
	emit(frames)
	switch {
	case failed != nil:
		return failed
	case ferr != nil:
		return ferr
	}
	return fmt.Errorf("read: %w", explain(err))
}

func (s *Source) record(dec *decode.Stream, mu *sync.Mutex, lost *int64) {
	decoded, skipped, corrupt := dec.Stats()
	mu.Lock()
	l := *lost
	mu.Unlock()
	s.mu.Lock()
	s.stats = Stats{Decoded: decoded, Skipped: skipped, Corrupt: corrupt, Lost: l}
	s.mu.Unlock()
}

// explain turns the status codes people meet into words.
func explain(err error) error {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		switch bad.Code {
		case base.StatusUnauthorized:
			return fmt.Errorf("wrong or missing credentials (%w)", err)
		case base.StatusNotFound:
			return fmt.Errorf("no such stream on the camera: check the path (%w)", err)
		}
	}
	return err
}

// Redact returns rawURL with its password replaced, for logs, errors and API responses.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		if err != nil {
			// Unparsable: keep the scheme and host-ish part only, never what could be user info.
			if at := strings.LastIndex(rawURL, "@"); at >= 0 {
				scheme, _, _ := strings.Cut(rawURL, "://")
				return scheme + "://xxxxx@" + rawURL[at+1:]
			}
		}
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// scrub removes a secret from an error's text, for errors from libraries that quote what they
// were given.
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "xxxxx"))
}

// track is the video track chosen from a session description.
type track struct {
	media  *description.Media
	format format.Format
	codec  decode.Codec
	params [][]byte
}

// pickTrack chooses the first H.264 track, else the first H.265 one, and takes its parameter
// sets from the SDP.
func pickTrack(desc *description.Session) (track, error) {
	var h264 *format.H264
	if m := desc.FindFormat(&h264); m != nil {
		return track{media: m, format: h264, codec: decode.H264, params: [][]byte{h264.SPS, h264.PPS}}, nil
	}
	var h265 *format.H265
	if m := desc.FindFormat(&h265); m != nil {
		return track{media: m, format: h265, codec: decode.H265, params: [][]byte{h265.VPS, h265.SPS, h265.PPS}}, nil
	}
	var found []string
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			found = append(found, f.Codec())
		}
	}
	if len(found) == 0 {
		return track{}, ErrNoVideo
	}
	return track{}, fmt.Errorf("%w (the stream offers %s)", ErrNoVideo, strings.Join(found, ", "))
}
