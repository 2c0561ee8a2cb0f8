//go:build cgo

package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest/replay"
)

// TestStalledReader stalls a lossless reader for longer than its read timeout and than the
// period of RTCP sender reports (10 s): keepalives hold the session open, and the first sender
// report maps RTP timestamps to the file's creation_time plus its presentation times.
func TestStalledReader(t *testing.T) {
	if testing.Short() {
		t.Skip("stalls for 11 s")
	}
	path := clip(t, "car-detection.mp4")
	want := probe(t, path)
	rp := open(t, newServer(t), path, replay.Options{})
	created := rp.Info().Created
	if !created.Equal(time.Date(2018, 4, 19, 22, 46, 0, 0, time.UTC)) {
		t.Fatalf("Info.Created %v, want the clip's creation_time 2018-04-19T22:46:00Z", created)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rd, done := playing(t, ctx, rp, 2*time.Second)
	var got []au
	for {
		select {
		case a := <-rd.aus:
			got = append(got, a)
			if len(got) == 5 {
				time.Sleep(11 * time.Second)
			}
			rp.Ack(int64(len(got)))
			continue
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v", err)
			}
		}
		break
	}
	if len(got) != len(want.pts) {
		t.Fatalf("received %d access units, want %d", len(got), len(want.pts))
	}
	mapped := 0
	for i, a := range got {
		if a.ntp.IsZero() {
			continue
		}
		mapped++
		wall := created.Add(time.Duration(want.pts[i]) * time.Second / 90000)
		if d := a.ntp.Sub(wall); d < -time.Millisecond || d > time.Millisecond {
			t.Fatalf("access unit %d: wall clock %v, want %v", i, a.ntp.UTC(), wall)
		}
	}
	if mapped == 0 {
		t.Fatal("no sender report reached the reader")
	}
	t.Logf("%d of %d access units mapped to the wall clock", mapped, len(got))
}
