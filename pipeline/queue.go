package pipeline

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Policy says what a full queue does with one more item.
type Policy int

const (
	// Block waits for room: nothing is lost, and the source slows down to the pipeline's pace.
	// Replays of files use it.
	Block Policy = iota
	// DropOldest makes room by dropping the item waiting longest: the pipeline works on the most
	// recent frames and never holds up a live camera. Drops are counted.
	DropOldest
)

// queue is a bounded queue between two stages. One stage puts, one or more workers of the next
// take; put never blocks under DropOldest. Only a pipeline's first queue drops: frames are
// numbered after it, so the stages behind see no gaps, and their bounded, blocking queues push
// back to it when the detector falls behind.
type queue struct {
	policy Policy
	ch     chan item
	// The series of the stage that takes from the queue, looked up once: a queue sees every frame.
	depth   prometheus.Gauge
	dropped prometheus.Counter
	wait    prometheus.Observer
}

func newQueue(stage string, size int, policy Policy, m *Metrics) *queue {
	return &queue{policy: policy, ch: make(chan item, size), depth: m.depth.WithLabelValues(stage),
		dropped: m.dropped.WithLabelValues(stage), wait: m.wait.WithLabelValues(stage)}
}

// put enqueues it, or gives up when ctx ends (Block only).
func (q *queue) put(ctx context.Context, it item) error {
	it.queued = time.Now()
	if q.policy == DropOldest {
		for {
			select {
			case q.ch <- it:
				q.depth.Inc()
				return nil
			default:
			}
			select {
			case <-q.ch:
				q.depth.Dec()
				q.dropped.Inc()
			default: // a taker got there first: there is room now
			}
		}
	}
	select {
	case q.ch <- it:
		q.depth.Inc()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take returns the next item, false once the queue is closed and empty, and records how long the
// item waited.
func (q *queue) take() (item, bool) {
	it, ok := <-q.ch
	if ok {
		q.taken(it)
	}
	return it, ok
}

func (q *queue) taken(it item) {
	q.depth.Dec()
	q.wait.Observe(time.Since(it.queued).Seconds())
}

// takeWithin is take that gives up after d with idle set; d <= 0 waits as long as it takes.
func (q *queue) takeWithin(d time.Duration) (it item, ok, idle bool) {
	if d <= 0 {
		it, ok = q.take()
		return it, ok, false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case it, ok = <-q.ch:
		if ok {
			q.taken(it)
		}
		return it, ok, false
	case <-timer.C:
		return item{}, true, true
	}
}

// close tells the takers that nothing more will come.
func (q *queue) close() { close(q.ch) }
