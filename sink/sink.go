// Package sink moves moments from the bus into PostgreSQL: batches from a durable consumer,
// written in one transaction, acknowledged only after the commit.
package sink

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/store"
)

// Config configures a Sink.
type Config struct {
	// BatchSize is the most moments per transaction. It defaults to 256.
	BatchSize int
	// BatchWait is how long a batch may wait to fill after its first moment. It defaults to 50ms.
	BatchWait time.Duration
	// RetryDelay is how long a batch that failed to commit waits before redelivery. It defaults
	// to 2s.
	RetryDelay time.Duration
}

// Sink writes moments from a consumer into a store.
type Sink struct {
	cfg     Config
	in      *bus.Consumer
	store   *store.Store
	log     *slog.Logger
	written prometheus.Counter
	failed  prometheus.Counter
	poison  prometheus.Counter
	batches prometheus.Histogram
}

// New returns a sink; its metrics are registered with reg.
func New(cfg Config, in *bus.Consumer, st *store.Store, reg prometheus.Registerer, log *slog.Logger) *Sink {
	if cfg.BatchSize < 1 {
		cfg.BatchSize = 256
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 50 * time.Millisecond
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 2 * time.Second
	}
	s := &Sink{
		cfg: cfg, in: in, store: st, log: log,
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_sink_moments_written_total", Help: "Moment messages committed to PostgreSQL."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_sink_batch_failures_total", Help: "Batches that failed to commit and were redelivered."}),
		poison: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_sink_poison_messages_total", Help: "Messages that were not moments, terminated."}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_sink_batch_seconds", Help: "Time to write and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	reg.MustRegister(s.written, s.failed, s.poison, s.batches)
	return s
}

// Run writes batches until ctx ends or the consumer is closed. A batch that fails to commit is not acknowledged but asked
// again after RetryDelay: nothing is lost while PostgreSQL is down, and the upsert makes the
// redelivery harmless.
func (s *Sink) Run(ctx context.Context) error {
	for {
		batch, err := s.in.Next(ctx, s.cfg.BatchSize, s.cfg.BatchWait)
		if ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
			return nil
		}
		if err != nil && len(batch) == 0 {
			return err
		}
		s.write(ctx, batch)
	}
}

func (s *Sink) write(ctx context.Context, batch []bus.Delivery) {
	moments := make([]pipeline.Moment, 0, len(batch))
	good := batch[:0:0]
	for _, d := range batch {
		if d.Err != nil {
			s.poison.Inc()
			s.log.Error("terminating a message that is not a moment", "err", d.Err)
			d.Term(d.Err.Error())
			continue
		}
		moments = append(moments, d.Moment)
		good = append(good, d)
	}
	if len(moments) == 0 {
		return
	}
	start := time.Now()
	_, err := s.store.WriteMoments(ctx, moments)
	s.batches.Observe(time.Since(start).Seconds())
	if err != nil {
		s.failed.Inc()
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("batch not committed, asking for redelivery", "moments", len(moments), "retry_in", s.cfg.RetryDelay, "err", err)
		}
		for _, d := range good {
			d.Nak(s.cfg.RetryDelay)
		}
		return
	}
	for _, d := range good {
		if err := d.Ack(); err != nil {
			// The moment is committed; a lost ack only means a harmless redelivery.
			s.log.Debug("ack lost", "moment", d.Moment.ID, "err", err)
		}
	}
	s.written.Add(float64(len(good)))
}
