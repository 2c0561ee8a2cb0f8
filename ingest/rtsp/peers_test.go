package rtsp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/ingest/rtsp/rtsptest"
)

// collector is a handler that keeps what an attempt produced.
type collector struct {
	mu        sync.Mutex
	frames    []ingest.Frame
	streaming int
	units     int
	first     chan struct{}
}

func newCollector() *collector { return &collector{first: make(chan struct{})} }

func (c *collector) Streaming() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streaming++; c.streaming == 1 {
		close(c.first)
	}
}

func (c *collector) Frame(f ingest.Frame) {
	f.BGR = f.BGR[:0:0] // keep memory flat over long runs; sizes are checked on Width and Height
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
}

func (c *collector) AccessUnit() {
	c.mu.Lock()
	c.units++
	c.mu.Unlock()
}

func (c *collector) snapshot() []ingest.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ingest.Frame(nil), c.frames...)
}

// rawServer accepts RTSP connections and answers every request with reply(method, cseq), for
// servers that misbehave in ways a real library will not.
func rawServer(t testing.TB, reply func(method, cseq string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				method, cseq := "", "1"
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if method == "" {
						method, _, _ = strings.Cut(line, " ")
					}
					if v, ok := strings.CutPrefix(line, "CSeq: "); ok {
						cseq = strings.TrimSpace(v)
					}
					if line == "\r\n" {
						io.WriteString(conn, reply(method, cseq))
						method = ""
					}
				}
			}()
		}
	}()
	return "rtsp://" + ln.Addr().String() + "/cam"
}

// describeOnly is a gortsplib server that describes one stream and sends nothing: enough for
// everything that goes wrong before PLAY.
type describeOnly struct {
	stream     *gortsplib.ServerStream
	user, pass string
}

func (h *describeOnly) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if h.user != "" && !ctx.Conn.VerifyCredentials(ctx.Request, h.user, h.pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

func (h *describeOnly) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

func (h *describeOnly) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func serveDescription(t testing.TB, forma format.Format, user, pass string) string {
	t.Helper()
	h := &describeOnly{user: user, pass: pass}
	srv := &gortsplib.Server{Handler: h, RTSPAddress: fmt.Sprintf("127.0.0.1:%d", rtsptest.FreePort(t))}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h.stream = &gortsplib.ServerStream{Server: srv, Desc: &description.Session{
		Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}}
	if err := h.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stream.Close)
	return "rtsp://" + srv.RTSPAddress + "/cam"
}

// run runs one attempt until it ends or until d passes, and returns its error.
func run(t testing.TB, src interface {
	Run(context.Context, ingest.Handler) error
}, h ingest.Handler, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := src.Run(ctx, h)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
