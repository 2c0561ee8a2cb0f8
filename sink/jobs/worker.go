package jobs

// This file owns the worker: the loop that takes index jobs off the queue, runs each one, records
// its outcome in the videos row and only then acknowledges it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/store"
)

// Worker runs index jobs from the queue, one at a time. Workers in one process or many share the
// queue's durable consumer and so split the jobs.
type Worker struct {
	ix   *Indexer
	jobs *bus.JobConsumer
	log  *slog.Logger
}

// NewWorker returns a worker that takes jobs from c and runs them with ix.
func NewWorker(ix *Indexer, c *bus.JobConsumer) *Worker {
	return &Worker{ix: ix, jobs: c, log: ix.log.With("stage", "worker")}
}

// Run takes jobs until ctx ends or the bus closes; while the queue cannot be read it tries again
// every RetryDelay. A job cut short by the end of ctx goes back to the queue and its row back to
// queued, for the next worker.
func (w *Worker) Run(ctx context.Context) error {
	for {
		d, err := w.jobs.Next(ctx)
		switch {
		case err == nil:
			w.handle(ctx, d)
		case ctx.Err() != nil, errors.Is(err, bus.ErrClosed):
			return nil
		default:
			w.log.Warn("cannot read the job queue; trying again", "retry_in", w.ix.cfg.RetryDelay, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(w.ix.cfg.RetryDelay):
			}
		}
	}
}

// handle takes one delivery to its end. A failed Nak or Term needs no care: the server delivers
// the job again after its ack wait.
func (w *Worker) handle(ctx context.Context, d bus.JobDelivery) {
	if d.Err != nil {
		w.terminate(d, w.log, d.Err.Error())
		return
	}
	job := d.Job
	log := w.log.With("video", job.VideoID, "tenant", job.Tenant, "attempt", d.Attempt)
	// Heartbeats start at once: the ack wait has been running since the server sent the job.
	stop := heartbeat(d, w.jobs.AckWait()/3, log)
	defer stop()
	v, err := w.ix.store.Video(ctx, job.Tenant, job.VideoID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		w.terminate(d, log, fmt.Sprintf("video %d of tenant %s does not exist", job.VideoID, job.Tenant))
		return
	case err != nil:
		if ctx.Err() == nil {
			log.Warn("cannot read the job's video; handing the job back", "retry_in", w.ix.cfg.RetryDelay, "err", err)
		}
		d.Nak(w.ix.cfg.RetryDelay)
		return
	case v.Status == store.StatusReady && !job.Force:
		// An earlier delivery did the work and its ack was lost.
		log.Debug("job already done")
		w.ack(d, log)
		return
	}

	log = log.With("path", v.Path)
	_, err = w.ix.run(ctx, &v, nil, log)
	if err != nil && ctx.Err() != nil {
		// The worker is stopping; the job did not fail.
		if err := w.ix.store.Requeue(context.WithoutCancel(ctx), v.ID); err != nil {
			log.Warn("row not set back to queued; the next worker still runs the job", "err", err)
		}
		d.Nak(0)
		log.Info("worker stopped mid-job; the job is back on the queue")
		return
	}
	w.finish(ctx, d, v.ID, err, log)
}

// finish records the job's outcome, ready or failed with cause, and then acks it. An outcome that
// cannot be recorded leaves the job on the queue to run again after RetryDelay.
func (w *Worker) finish(ctx context.Context, d bus.JobDelivery, id int64, cause error, log *slog.Logger) {
	if err := w.ix.store.Finish(context.WithoutCancel(ctx), id, cause); err != nil {
		log.Warn("outcome not recorded; the job will run again", "retry_in", w.ix.cfg.RetryDelay, "err", err)
		d.Nak(w.ix.cfg.RetryDelay)
		return
	}
	if cause != nil {
		log.Warn("indexing failed", "err", cause)
	}
	w.ack(d, log)
}

func (w *Worker) ack(d bus.JobDelivery, log *slog.Logger) {
	if err := d.Ack(); err != nil {
		// The outcome is recorded; the redelivery a lost ack causes finds the row ready, or runs
		// a failed job once more.
		log.Debug("ack lost", "err", err)
	}
}

func (w *Worker) terminate(d bus.JobDelivery, log *slog.Logger, reason string) {
	log.Error("terminating a job that can never run", "reason", reason)
	d.Term(reason)
}

// heartbeat tells the server at once, and then every interval until stop returns, that d is still
// being worked on, so a job longer than the ack wait is not handed to a second worker. A heartbeat
// due after the ack or nak is refused by the client, not sent.
func heartbeat(d bus.JobDelivery, every time.Duration, log *slog.Logger) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if err := d.InProgress(); err != nil {
				log.Debug("heartbeat lost", "err", err)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}
