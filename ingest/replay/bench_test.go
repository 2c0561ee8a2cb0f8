//go:build cgo

package replay_test

import (
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest/replay"
)

// benchmarkReplay replays a clip losslessly to a reader that acknowledges at once, and reports
// access units per second and how many times faster than real time that is.
func benchmarkReplay(b *testing.B, name string) {
	path := clip(b, name)
	srv := newServer(b)
	var aus int64
	var content, took time.Duration
	for b.Loop() {
		rp, err := srv.Open(path, replay.Options{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rd, got, err := replayAll(b, rp, nil)
		if err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		aus += int64(len(got))
		content += rp.Info().Duration
		rp.Close()
		rd.c.Close()
	}
	b.ReportMetric(float64(aus)/took.Seconds(), "AU/s")
	b.ReportMetric(content.Seconds()/took.Seconds(), "x_realtime")
}

// BenchmarkLossless sends H.264 as it is (768x432, 1,394 access units).
func BenchmarkLossless(b *testing.B) { benchmarkReplay(b, "one-by-one-person-detection.mp4") }

// BenchmarkTranscode re-encodes MS-MPEG4v3 to H.264 (768x576, 795 access units).
func BenchmarkTranscode(b *testing.B) { benchmarkReplay(b, "vtest.avi") }
