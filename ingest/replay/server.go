package replay

// This file owns the RTSP server: its listener, the table of replays by path, and the binding of
// a lossless replay to its one reader.

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

const (
	// writeQueueSize is the number of RTP and RTCP packets gortsplib queues for each reader; it
	// must be a power of two. The largest access unit an RTP reader takes (8 MiB, see
	// codec.maxAUSize) is about 5,800 packets, so a lone access unit always fits, and a lossless
	// replay keeps the packets of its window within the queue (Replay.room).
	writeQueueSize = 8192
	// writeQueueSpare is kept free for RTCP: sender reports (one per 10 s) and keepalives (one per
	// second, for at most gortsplib's 10 s write timeout before a stuck reader is dropped).
	writeQueueSpare = 32
	pathPrefix      = "/replay/"
	payloadType     = 96
	// warnEvery spaces the warnings about packets dropped for slow readers of real-time replays.
	warnEvery = 10 * time.Second
)

// namePattern is what Options.Name may be: one path segment that needs no escaping.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Config configures a Server.
type Config struct {
	// Address is the TCP address the RTSP server listens on. It defaults to "127.0.0.1:0": a free
	// port on loopback, out of reach of other machines.
	Address string
}

// Server serves replays over RTSP with the TCP transport. Its methods are safe for concurrent use.
type Server struct {
	log  *slog.Logger
	rtsp *gortsplib.Server
	// host is the host:port of replay URLs.
	host string

	mu      sync.Mutex
	closed  bool
	replays map[string]*Replay
	// plays holds the PLAY being answered on a connection that bound a lossless replay; readers
	// holds the replay each bound session reads.
	plays   map[*gortsplib.ServerConn]binding
	readers map[*gortsplib.ServerSession]*Replay
	// dropped counts packets that readers' full queues refused since the last warning.
	dropped  int64
	lastWarn time.Time

	closeOnce sync.Once
}

// New starts a server listening on cfg.Address. log receives warnings about slow readers of
// real-time replays; nil discards them.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:     log,
		replays: make(map[string]*Replay),
		plays:   make(map[*gortsplib.ServerConn]binding),
		readers: make(map[*gortsplib.ServerSession]*Replay),
	}
	var addr net.Addr
	s.rtsp = &gortsplib.Server{
		Handler:        &handler{s: s},
		RTSPAddress:    cfg.Address,
		WriteQueueSize: writeQueueSize,
		// The port is known only once listening; Start has returned by the time anyone asks.
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				addr = ln.Addr()
			}
			return ln, err
		},
	}
	if err := s.rtsp.Start(); err != nil {
		return nil, fmt.Errorf("replay server: listen on %s: %w", cfg.Address, err)
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		s.rtsp.Close()
		return nil, fmt.Errorf("replay server: listen on %s: not a TCP address", cfg.Address)
	}
	ip := tcp.IP
	if ip.IsUnspecified() {
		// Listening on every interface includes loopback.
		ip = net.IPv4(127, 0, 0, 1)
	}
	s.host = net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
	return s, nil
}

// Addr is the host:port readers connect to.
func (s *Server) Addr() string { return s.host }

// Open prepares a replay of the video file at path: it probes the file, picks its best video
// stream, reads up to the first access unit it can send, and publishes the stream at a new
// unguessable URL. Nothing is written before Run.
func (s *Server) Open(path string, opts Options) (*Replay, error) {
	switch {
	case opts.Window < 0:
		return nil, fmt.Errorf("replay %s: %w: Window %d", path, ErrInvalidOption, opts.Window)
	case opts.Loop && !opts.RealTime:
		return nil, fmt.Errorf("replay %s: %w: Loop needs RealTime: a lossless replay ends", path, ErrInvalidOption)
	case opts.Name != "" && !namePattern.MatchString(opts.Name):
		return nil, fmt.Errorf("replay %s: %w: Name %q is not letters, digits, - and _", path, ErrInvalidOption, opts.Name)
	case opts.Window == 0:
		opts.Window = defaultWindow
	}
	src, err := openMedia(path)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	r, err := s.newReplay(path, opts, src)
	if err != nil {
		src.close()
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	return r, nil
}

func (s *Server) newReplay(path string, opts Options, src *media) (*Replay, error) {
	r := &Replay{
		srv:     s,
		file:    path,
		opts:    opts,
		info:    src.info,
		src:     src,
		origin:  src.info.Created,
		closing: make(chan struct{}),
		played:  make(chan struct{}),
		left:    make(chan struct{}),
		acks:    make(chan struct{}, 1),
		runDone: make(chan struct{}),
	}
	if r.origin.IsZero() {
		r.origin = time.Now()
	}
	lengthSize, params, err := parseExtradata(src.codec, src.extradata)
	if err != nil {
		return nil, fmt.Errorf("codec configuration: %w", err)
	}
	r.fr = framer{codec: src.codec, lengthSize: lengthSize, params: params}
	r.tl.frame = clockRate / 25
	if fps := src.info.FPS; fps > 0 && clockRate/fps >= 1 {
		r.tl.frame = int64(math.Round(clockRate / fps))
	}
	// The first access unit also brings the parameter sets of streams that keep them in-band only.
	if r.first, err = r.read(); err != nil {
		return nil, fmt.Errorf("first access unit: %w", err)
	}
	var forma format.Format
	if src.codec == codecH265 {
		f := &format.H265{
			PayloadTyp: payloadType,
			VPS:        r.fr.param(byte(h265.NALUType_VPS_NUT)),
			SPS:        r.fr.param(byte(h265.NALUType_SPS_NUT)),
			PPS:        r.fr.param(byte(h265.NALUType_PPS_NUT)),
		}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, fmt.Errorf("RTP encoder: %w", err)
		}
		forma, r.enc = f, enc
	} else {
		f := &format.H264{
			PayloadTyp:        payloadType,
			PacketizationMode: 1,
			SPS:               r.fr.param(byte(h264.NALUTypeSPS)),
			PPS:               r.fr.param(byte(h264.NALUTypePPS)),
		}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, fmt.Errorf("RTP encoder: %w", err)
		}
		forma, r.enc = f, enc
	}
	// 128 random bits: a replay's URL is its only access control.
	r.path = pathPrefix + strings.ToLower(rand.Text())
	if opts.Name != "" {
		r.path = pathPrefix + opts.Name
	}
	// RFC 3550 §5.1: the first timestamp is random.
	r.rtpBase = mrand.Uint32()
	r.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	r.stream = &gortsplib.ServerStream{Server: s.rtsp, Desc: &description.Session{Medias: []*description.Media{r.media}}}
	if err := r.stream.Initialize(); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		r.stream.Close()
		return nil, fmt.Errorf("server: %w", ErrClosed)
	}
	if s.replays[r.path] != nil {
		r.stream.Close()
		return nil, fmt.Errorf("%w: Name %q is in use", ErrInvalidOption, opts.Name)
	}
	s.replays[r.path] = r
	return r, nil
}

func (s *Server) lookup(path string) *Replay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replays[path]
}

func (s *Server) remove(r *Replay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.replays, r.path)
	for sc, b := range s.plays {
		if b.replay == r {
			delete(s.plays, sc)
		}
	}
	for ss, rr := range s.readers {
		if rr == r {
			delete(s.readers, ss)
		}
	}
}

// Close closes every replay and stops the server. It is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		replays := make([]*Replay, 0, len(s.replays))
		for _, r := range s.replays {
			replays = append(replays, r)
		}
		s.mu.Unlock()
		for _, r := range replays {
			_ = r.Close() // never fails
		}
		s.rtsp.Close()
	})
	return nil
}

// handler answers gortsplib's callbacks; it keeps them out of Server's exported methods.
type handler struct{ s *Server }

// binding is a lossless replay bound to the session of its reader.
type binding struct {
	replay  *Replay
	session *gortsplib.ServerSession
}

func notFound() (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
}

// busy answers a second reader of a lossless replay: its acknowledgements pace the replay, so
// there can be only one.
func busy() *base.Response {
	return &base.Response{StatusCode: base.StatusServiceUnavailable}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	r := h.s.lookup(ctx.Path)
	if r == nil {
		return notFound()
	}
	return &base.Response{StatusCode: base.StatusOK}, r.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	r := h.s.lookup(ctx.Path)
	if r == nil {
		return notFound()
	}
	if !r.opts.RealTime {
		r.mu.Lock()
		taken := r.reader != nil && r.reader != ctx.Session
		r.mu.Unlock()
		if taken {
			return busy(), nil, nil
		}
	}
	return &base.Response{StatusCode: base.StatusOK}, r.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay. It binds a lossless replay to the session;
// writing starts once the answer is on its way (OnResponse), because gortsplib adds the session
// to the stream's readers only after OnPlay returns.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	r := h.s.lookup(ctx.Path)
	if r == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	if r.opts.RealTime {
		return &base.Response{StatusCode: base.StatusOK}, nil
	}
	r.mu.Lock()
	switch r.reader {
	case ctx.Session: // PLAY again
		r.mu.Unlock()
		return &base.Response{StatusCode: base.StatusOK}, nil
	case nil:
		r.reader = ctx.Session
		r.mu.Unlock()
	default:
		r.mu.Unlock()
		return busy(), nil
	}
	h.s.mu.Lock()
	h.s.plays[ctx.Conn] = binding{replay: r, session: ctx.Session}
	h.s.readers[ctx.Session] = r
	h.s.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnResponse implements gortsplib.ServerHandlerOnResponse. A connection answers its requests in
// order, so the response that follows a binding PLAY is that PLAY's.
func (h *handler) OnResponse(sc *gortsplib.ServerConn, res *base.Response) {
	h.s.mu.Lock()
	b, ok := h.s.plays[sc]
	delete(h.s.plays, sc)
	if ok && res.StatusCode != base.StatusOK {
		delete(h.s.readers, b.session)
	}
	h.s.mu.Unlock()
	if !ok {
		return
	}
	r := b.replay
	if res.StatusCode == base.StatusOK {
		r.playOnce.Do(func() { close(r.played) })
		return
	}
	r.mu.Lock()
	if r.reader == b.session {
		r.reader = nil
	}
	r.mu.Unlock()
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.s.mu.Lock()
	r := h.s.readers[ctx.Session]
	delete(h.s.readers, ctx.Session)
	h.s.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reader != ctx.Session {
		return
	}
	select {
	case <-r.played:
		r.leftOnce.Do(func() { close(r.left) })
	default:
		r.reader = nil
	}
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.mu.Lock()
	delete(h.s.plays, ctx.Conn)
	h.s.mu.Unlock()
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError: a reader of a
// real-time replay too slow for its queue loses packets, as a camera's would. A lossless replay
// never fills its reader's queue.
func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	s := h.s
	s.mu.Lock()
	s.dropped++
	now := time.Now()
	if now.Sub(s.lastWarn) < warnEvery {
		s.mu.Unlock()
		return
	}
	dropped := s.dropped
	s.dropped, s.lastWarn = 0, now
	s.mu.Unlock()
	s.log.Warn("replay reader too slow: packets dropped", "stage", "replay", "dropped", dropped, "err", ctx.Error)
}
