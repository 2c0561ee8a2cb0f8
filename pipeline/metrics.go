package pipeline

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pipeline's Prometheus series, shared by every source in the process.
type Metrics struct {
	frames  *prometheus.CounterVec
	dropped *prometheus.CounterVec
	errors  *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	moments prometheus.Counter
}

// NewMetrics registers the pipeline's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_stage_frames_total", Help: "Frames that passed through each pipeline stage.",
		}, []string{"stage"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_stage_dropped_total", Help: "Frames a stage dropped: held back by the motion gate, or lost to a full queue.",
		}, []string{"stage"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_stage_errors_total", Help: "Frames a stage failed on; the frame goes on without that stage's result.",
		}, []string{"stage"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_stage_seconds", Help: "Time a stage spent on one frame.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"stage"}),
		moments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_moments_published_total", Help: "Moments published to the bus.",
		}),
	}
	reg.MustRegister(m.frames, m.dropped, m.errors, m.seconds, m.moments)
	return m
}
