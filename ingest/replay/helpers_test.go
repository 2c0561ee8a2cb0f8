//go:build cgo

package replay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/ingest/replay"
)

// h264Clips are the shared clips sent without re-encoding.
var h264Clips = []string{"car-detection.mp4", "cars.mp4", "dog.mp4", "one-by-one-person-detection.mp4"}

func newServer(t testing.TB) *replay.Server {
	t.Helper()
	srv, err := replay.New(replay.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func open(t testing.TB, srv *replay.Server, path string, opts replay.Options) *replay.Replay {
	t.Helper()
	rp, err := srv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.Close() })
	return rp
}

// run starts rp.Run and returns where its result arrives.
func run(ctx context.Context, rp *replay.Replay) <-chan error {
	done := make(chan error, 1)
	go func() { done <- rp.Run(ctx) }()
	return done
}

// au is an access unit as a reader received it.
type au struct {
	units [][]byte
	ts    uint32
	// ntp is the wall clock the sender reports map ts to; zero before the first report.
	ntp time.Time
}

// reader is a gortsplib client over TCP that decodes RTP into access units, as vigil's RTSP
// source does.
type reader struct {
	c    *gortsplib.Client
	h264 *format.H264
	h265 *format.H265
	// aus receives every access unit, in order; the client stops reading while it is full.
	aus chan au
}

type rtpDecoder interface {
	Decode(*rtp.Packet) ([][]byte, error)
}

// playing runs rp until ctx ends and attaches one reader that has sent PLAY; Run's result
// arrives on the channel.
func playing(t testing.TB, ctx context.Context, rp *replay.Replay, readTimeout time.Duration) (*reader, <-chan error) {
	t.Helper()
	done := run(ctx, rp)
	rd, err := dial(t, rp.URL(), readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.play(); err != nil {
		t.Fatal(err)
	}
	return rd, done
}

// dial connects to url and sets the stream up; play starts it.
func dial(t testing.TB, url string, readTimeout time.Duration) (*reader, error) {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.TransportTCP
	r := &reader{
		c:   &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp, ReadTimeout: readTimeout},
		aus: make(chan au, 4096),
	}
	if err := r.c.Start2(); err != nil {
		return nil, err
	}
	t.Cleanup(r.c.Close)
	desc, _, err := r.c.Describe(u)
	if err != nil {
		return nil, err
	}
	var medi *description.Media
	var forma format.Format
	var dec rtpDecoder
	if medi = desc.FindFormat(&r.h264); medi != nil {
		forma = r.h264
		dec, err = r.h264.CreateDecoder()
	} else if medi = desc.FindFormat(&r.h265); medi != nil {
		forma = r.h265
		dec, err = r.h265.CreateDecoder()
	} else {
		return nil, fmt.Errorf("no H.264 or H.265 in %v", desc.Medias)
	}
	if err != nil {
		return nil, err
	}
	if _, err := r.c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return nil, err
	}
	r.c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		units, err := dec.Decode(pkt)
		if err != nil {
			return // more packets needed, or a stream joined mid-unit
		}
		ntp, _ := r.c.PacketNTP(medi, pkt)
		r.aus <- au{units: units, ts: pkt.Timestamp, ntp: ntp}
	})
	return r, nil
}

func (r *reader) play() error {
	_, err := r.c.Play(nil)
	return err
}

// isRandomAccess reports whether the access unit starts a decodable sequence.
func (r *reader) isRandomAccess(a au) bool {
	if r.h265 != nil {
		return h265.IsRandomAccess(a.units)
	}
	return h264.IsRandomAccess(a.units)
}

// hasParams reports whether the access unit carries its parameter sets in-band.
func (r *reader) hasParams(a au) bool {
	seen := map[byte]bool{}
	for _, u := range a.units {
		if r.h265 != nil {
			seen[(u[0]>>1)&0x3f] = true
		} else {
			seen[u[0]&0x1f] = true
		}
	}
	if r.h265 != nil {
		return seen[byte(h265.NALUType_VPS_NUT)] && seen[byte(h265.NALUType_SPS_NUT)] && seen[byte(h265.NALUType_PPS_NUT)]
	}
	return seen[byte(h264.NALUTypeSPS)] && seen[byte(h264.NALUTypePPS)]
}

// replayAll plays rp to its end with one reader that acknowledges every access unit after
// pause(i) (i counts from 0), and returns what it received and what Run returned.
func replayAll(t testing.TB, rp *replay.Replay, pause func(i int) time.Duration) (*reader, []au, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rd, done := playing(t, ctx, rp, 0)
	var got []au
	for {
		select {
		case a := <-rd.aus:
			got = append(got, a)
			if pause != nil {
				time.Sleep(pause(len(got) - 1))
			}
			rp.Ack(int64(len(got)))
		case err := <-done:
			// After a failed run, what was written before the failure is still on its way.
			for err != nil {
				select {
				case a := <-rd.aus:
					got = append(got, a)
				case <-time.After(300 * time.Millisecond):
					return rd, got, err
				}
			}
			return rd, got, err
		}
	}
}

// probed is what ffprobe says of a file's first video stream.
type probed struct {
	// pts holds each packet's presentation time in 90 kHz units, in file order. A packet without
	// timestamps (raw elementary streams) starts where the one before it ends.
	pts []int64
	// bFrames is set when packets come out of presentation order.
	bFrames bool
}

// probe runs ffprobe, or skips the test when it is absent.
func probe(t testing.TB, path string) probed {
	t.Helper()
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skipf("ffprobe not on PATH: %v", err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
		"packet=pts,dts,duration:stream=time_base,has_b_frames", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var doc struct {
		Packets []struct {
			PTS      *int64 `json:"pts"`
			DTS      *int64 `json:"dts"`
			Duration int64  `json:"duration"`
		} `json:"packets"`
		Streams []struct {
			TimeBase   string `json:"time_base"`
			HasBFrames int    `json:"has_b_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v\n%.500s", path, err, out)
	}
	num, den, ok := strings.Cut(doc.Streams[0].TimeBase, "/")
	n, err1 := strconv.ParseInt(num, 10, 64)
	d, err2 := strconv.ParseInt(den, 10, 64)
	if !ok || err1 != nil || err2 != nil || n <= 0 || d <= 0 {
		t.Fatalf("ffprobe %s: time base %q", path, doc.Streams[0].TimeBase)
	}
	p := probed{bFrames: doc.Streams[0].HasBFrames > 0}
	var end int64
	for _, pkt := range doc.Packets {
		ts := end
		switch {
		case pkt.PTS != nil:
			ts = *pkt.PTS
		case pkt.DTS != nil:
			ts = *pkt.DTS
		}
		end = max(end, ts+pkt.Duration)
		// Rounded to nearest, as av_rescale_q does.
		p.pts = append(p.pts, (ts*n*90000+d/2)/d)
	}
	return p
}

// checkTimestamps compares the RTP timestamps received with the file's presentation times: the
// same steps from the first access unit, to the tick.
func checkTimestamps(t *testing.T, got []au, want probed) {
	t.Helper()
	if len(got) != len(want.pts) {
		t.Fatalf("received %d access units, ffprobe counts %d video packets", len(got), len(want.pts))
	}
	for i, a := range got {
		step := int64(int32(a.ts - got[0].ts))
		if wantStep := want.pts[i] - want.pts[0]; step < wantStep-1 || step > wantStep+1 {
			t.Fatalf("access unit %d: RTP timestamp %d ticks after the first, the file says %d", i, step, wantStep)
		}
	}
}

// ffmpeg runs ffmpeg with args, or skips the test when it is absent.
func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skipf("ffmpeg not on PATH: %v", err)
	}
	cmd := exec.Command(bin, append([]string{"-v", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func clip(t testing.TB, name string) string {
	t.Helper()
	return sharedtest.Clip(t, name)
}

// isStatus reports whether a gortsplib client error is an RTSP answer with that status code.
func isStatus(err error, code base.StatusCode) bool {
	var bad liberrors.ErrClientBadStatusCode
	return errors.As(err, &bad) && bad.Code == code
}
