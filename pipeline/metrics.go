package pipeline

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pipeline's Prometheus series, shared by every source in the process.
type Metrics struct {
	frames  *prometheus.CounterVec
	dropped *prometheus.CounterVec
	errors  *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	wait    *prometheus.HistogramVec
	depth   *prometheus.GaugeVec
	gated   prometheus.Counter
	moments prometheus.Counter
	// captionSkips counts moments left with their composed caption, by reason.
	captionSkips *prometheus.CounterVec
}

// NewMetrics registers the pipeline's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_stage_frames_total", Help: "Frames that passed through each pipeline stage.",
		}, []string{"stage"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_stage_dropped_total", Help: "Frames of live sources dropped from a stage's full queue, oldest first.",
		}, []string{"stage"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_stage_errors_total", Help: "Frames a stage failed on; the frame goes on without that stage's result.",
		}, []string{"stage"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_stage_seconds", Help: "Time a stage spent on one frame.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"stage"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_stage_wait_seconds", Help: "Time a frame waited in the queue in front of a stage.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"stage"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_stage_queue_depth", Help: "Frames waiting in front of a stage, summed over sources.",
		}, []string{"stage"}),
		gated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_motion_gated_total", Help: "Frames the motion gate kept from the detector: nothing moved.",
		}),
		moments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_moments_published_total", Help: "Moments published to the bus.",
		}),
		captionSkips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_caption_skipped_total",
			Help: "Moments not captioned, by reason (queue_full, stale, rate, cancelled); they keep the caption composed from their objects.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.frames, m.dropped, m.errors, m.seconds, m.wait, m.depth, m.gated, m.moments, m.captionSkips)
	return m
}
