package ingest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilcam/vigil/ingest"
)

func newSupervisor(t *testing.T, attempt ingest.Attempt) (*ingest.Supervisor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := ingest.NewSupervisor(ingest.SupervisorConfig{
		Camera: "gate", Attempt: attempt, MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
	}, ingest.NewCameraMetrics(reg), slog.New(slog.DiscardHandler))
	return s, reg
}

func TestSupervisorRetriesForever(t *testing.T) {
	before := runtime.NumGoroutine()
	calls := make(chan time.Time, 100)
	s, reg := newSupervisor(t, func(ctx context.Context, h ingest.Handler) error {
		calls <- time.Now()
		return errors.New("connection refused")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	var at []time.Time
	for len(at) < 8 {
		at = append(at, <-calls)
	}
	st := s.State()
	if st.Reconnects < 7 || st.LastError != "connection refused" || (st.Phase != ingest.Backoff && st.Phase != ingest.Connecting) {
		t.Errorf("state after 8 failed attempts: %+v", st)
	}
	// Pauses grow from 5 ms and are capped at 40 ms, each with up to half of it random.
	if first, last := at[1].Sub(at[0]), at[7].Sub(at[6]); first > 30*time.Millisecond || last < 20*time.Millisecond || last > 200*time.Millisecond {
		t.Errorf("first pause %v, eighth %v: want about 2.5-5 ms growing to 20-40 ms", first, last)
	}
	if n := gathered(t, reg, "vigil_camera_reconnects_total"); n < 7 {
		t.Errorf("reconnect metric %v, want at least 7", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after stop: %v, want io.EOF", err)
	}
	if st := s.State(); st.Phase != ingest.Stopped {
		t.Errorf("phase after stop: %s", st.Phase)
	}
	// The camera's series go with it.
	if n := testutil.CollectAndCount(reg, "vigil_camera_reconnects_total"); n != 0 {
		t.Errorf("%d reconnect series left after the camera stopped", n)
	}
	waitGoroutines(t, before)
}

// gathered sums the series of a metric family in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), baseline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSupervisorNewestFrameWins: a camera never waits for the pipeline; a busy reader gets the
// newest frame and the ones it missed are counted.
func TestSupervisorNewestFrameWins(t *testing.T) {
	sent := make(chan struct{})
	s, _ := newSupervisor(t, func(ctx context.Context, h ingest.Handler) error {
		start := time.Now()
		for i := range 100 {
			pts := time.Duration(i) * 40 * time.Millisecond
			h.Frame(ingest.Frame{Seq: int64(i), PTS: pts, Wall: start.Add(pts)})
		}
		h.Streaming()
		close(sent)
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	<-sent // 100 frames handed over while nobody reads: none of them blocked
	f, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	st := s.State()
	if f.Seq != 99 || st.FramesIn != 100 || st.Dropped != 99 || st.FramesOut != 1 || st.Phase != ingest.Streaming {
		t.Errorf("reader got frame %d; state %+v; want the newest, 99 dropped", f.Seq, st)
	}
}

// TestSupervisorTimeAcrossReconnects: every attempt's stream time starts again at 0, the
// camera's must not.
func TestSupervisorTimeAcrossReconnects(t *testing.T) {
	s, _ := newSupervisor(t, func(ctx context.Context, h ingest.Handler) error {
		wall := time.Now().Add(-time.Hour) // a camera clock that is off, and restarts each time
		for i := range 5 {
			pts := time.Duration(i) * 100 * time.Millisecond
			h.Frame(ingest.Frame{PTS: pts, Wall: wall.Add(pts)})
		}
		return errors.New("stream ended")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	var last ingest.Frame
	for i := range 12 {
		f, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (f.PTS <= last.PTS || f.Wall.Before(last.Wall)) {
			t.Fatalf("frame %d at %v / %v after %v / %v: went back", i, f.PTS, f.Wall, last.PTS, last.Wall)
		}
		last = f
	}
	if st := s.State(); st.Reconnects < 1 {
		t.Errorf("12 frames of 5-frame attempts with %d reconnects", st.Reconnects)
	}
}
