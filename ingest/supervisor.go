package ingest

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Attempt is one try at a source: it connects, streams frames to h until the source fails, and
// returns why. It never retries; the Supervisor does.
type Attempt func(ctx context.Context, h Handler) error

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Camera names the camera in logs and metric labels; it must not hold credentials.
	Camera string
	// Attempt reads the camera once.
	Attempt Attempt
	// MinBackoff is the pause after the first failure; each failure in a row doubles it.
	// It defaults to 1s.
	MinBackoff time.Duration
	// MaxBackoff caps the pause. An attempt that streamed at least this long resets it.
	// It defaults to 30s.
	MaxBackoff time.Duration
}

// Supervisor keeps one camera connected for as long as it runs: attempt, back off, attempt again,
// forever. It hands frames to a single reader through a one-frame mailbox in which the newest frame
// wins, so a slow pipeline never holds up the camera; replaced frames are counted as dropped.
type Supervisor struct {
	cfg     SupervisorConfig
	log     *slog.Logger
	metrics *CameraMetrics
	out     chan Frame
	started time.Time

	mu    sync.Mutex
	state State

	// Owned by the attempt's goroutine.
	firstOfAttempt bool
	offset         time.Duration
	lastPTS        time.Duration
	lastWall       time.Time
}

// NewSupervisor returns a supervisor for one camera; metrics may be shared by every camera.
func NewSupervisor(cfg SupervisorConfig, metrics *CameraMetrics, log *slog.Logger) *Supervisor {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(cfg.MinBackoff, 30*time.Second)
	}
	return &Supervisor{
		cfg: cfg, log: log.With("camera", cfg.Camera), metrics: metrics,
		out: make(chan Frame, 1), lastPTS: -1,
	}
}

// Run keeps the camera connected until ctx ends, then returns nil; the reader then gets io.EOF.
func (s *Supervisor) Run(ctx context.Context) error {
	defer close(s.out)
	defer s.metrics.forget(s.cfg.Camera)
	s.started = time.Now()
	failures := 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.update(func(st *State) { st.Reconnects++ })
			s.metrics.reconnects.WithLabelValues(s.cfg.Camera).Inc()
		}
		s.setPhase(Connecting, "")
		s.firstOfAttempt = true
		began := time.Now()
		err := s.cfg.Attempt(ctx, s)
		if ctx.Err() != nil {
			s.setPhase(Stopped, "")
			return nil
		}
		if time.Since(began) >= s.cfg.MaxBackoff && s.State().Phase == Streaming {
			failures = 0
		}
		wait := backoff(s.cfg.MinBackoff, s.cfg.MaxBackoff, failures)
		failures++
		msg := "the stream ended"
		if err != nil {
			msg = err.Error()
		}
		s.log.Warn("camera attempt failed; retrying", "err", msg, "retry_in", wait.Round(time.Millisecond))
		s.setPhase(Backoff, msg)
		select {
		case <-ctx.Done():
			s.setPhase(Stopped, "")
			return nil
		case <-time.After(wait):
		}
	}
}

// backoff is min·2^failures capped at max, with "equal jitter": half fixed, half random, so that
// cameras behind one failed switch do not all come back in the same instant.
func backoff(lo, hi time.Duration, failures int) time.Duration {
	d := hi
	if failures < 32 {
		d = min(hi, lo<<failures)
	}
	return d/2 + rand.N(d/2+1)
}

// Next returns the newest frame, waiting for one; io.EOF once the supervisor has stopped.
func (s *Supervisor) Next() (Frame, error) {
	f, ok := <-s.out
	if !ok {
		return Frame{}, io.EOF
	}
	s.update(func(st *State) { st.FramesOut++ })
	s.metrics.out.WithLabelValues(s.cfg.Camera).Inc()
	return f, nil
}

// State returns the camera's current state.
func (s *Supervisor) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Streaming implements Handler.
func (s *Supervisor) Streaming() { s.setPhase(Streaming, "") }

// AccessUnit implements Handler; live cameras are not paced.
func (s *Supervisor) AccessUnit() {}

// Frame implements Handler: it never blocks. Stream time continues across reconnects as time
// since the supervisor started, and neither clock ever goes back.
func (s *Supervisor) Frame(f Frame) {
	if s.firstOfAttempt {
		s.firstOfAttempt = false
		s.offset = max(time.Since(s.started), s.lastPTS+time.Millisecond) - f.PTS
	}
	f.PTS += s.offset
	if f.PTS <= s.lastPTS {
		f.PTS = s.lastPTS + time.Millisecond
	}
	s.lastPTS = f.PTS
	if f.Wall.Before(s.lastWall) {
		f.Wall = s.lastWall
	}
	s.lastWall = f.Wall
	s.update(func(st *State) { st.FramesIn++ })
	s.metrics.in.WithLabelValues(s.cfg.Camera).Inc()

	select {
	case s.out <- f:
		return
	default:
	}
	// The reader has not taken the last frame: replace it.
	select {
	case <-s.out:
		s.dropped()
	default:
	}
	select {
	case s.out <- f:
	default:
		s.dropped() // unreachable with one producer, but a frame must never block the camera
	}
}

func (s *Supervisor) dropped() {
	s.update(func(st *State) { st.Dropped++ })
	s.metrics.dropped.WithLabelValues(s.cfg.Camera).Inc()
}

func (s *Supervisor) update(change func(*State)) {
	s.mu.Lock()
	change(&s.state)
	s.mu.Unlock()
}

func (s *Supervisor) setPhase(p Phase, lastError string) {
	s.mu.Lock()
	if s.state.Phase != p {
		s.state.Phase, s.state.Since = p, time.Now()
	}
	if lastError != "" {
		s.state.LastError = lastError
	}
	s.mu.Unlock()
	s.metrics.phase(s.cfg.Camera, p)
}

// CameraMetrics are the Prometheus metrics of every camera, labelled by camera name.
type CameraMetrics struct {
	in, out, dropped, reconnects *prometheus.CounterVec
	state                        *prometheus.GaugeVec
}

var phases = []Phase{Connecting, Streaming, Backoff, Stopped}

// NewCameraMetrics registers the camera metrics with reg.
func NewCameraMetrics(reg prometheus.Registerer) *CameraMetrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"camera"})
	}
	m := &CameraMetrics{
		in:         counter("vigil_camera_frames_in_total", "Frames a camera delivered at its analysis rate."),
		out:        counter("vigil_camera_frames_out_total", "Frames the pipeline took from a camera."),
		dropped:    counter("vigil_camera_frames_dropped_total", "Frames replaced by a newer one before the busy pipeline took them."),
		reconnects: counter("vigil_camera_reconnects_total", "Attempts to reach a camera after its first."),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_camera_state", Help: "1 for the phase a camera is in (connecting, streaming, backoff, stopped)."},
			[]string{"camera", "state"}),
	}
	reg.MustRegister(m.in, m.out, m.dropped, m.reconnects, m.state)
	return m
}

func (m *CameraMetrics) phase(camera string, p Phase) {
	for _, q := range phases {
		v := 0.0
		if q == p {
			v = 1
		}
		m.state.WithLabelValues(camera, string(q)).Set(v)
	}
}

// forget drops a removed camera's series, so that metrics do not grow with every camera ever seen.
func (m *CameraMetrics) forget(camera string) {
	for _, v := range []*prometheus.CounterVec{m.in, m.out, m.dropped, m.reconnects} {
		v.DeleteLabelValues(camera)
	}
	m.state.DeletePartialMatch(prometheus.Labels{"camera": camera})
}
