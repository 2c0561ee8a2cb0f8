package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/jobs/jobstest"
	"github.com/vigilcam/vigil/sink/store"
)

// queue looks at the job queue from outside, as a second JetStream client would.
type queue struct {
	t  *testing.T
	js jetstream.JetStream
}

func newQueue(t *testing.T, b *bus.Bus) queue {
	nc, err := nats.Connect(b.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return queue{t, js}
}

// drained waits a little for acks and terms to land, then reports the jobs left on the queue.
func (q queue) drained() uint64 {
	q.t.Helper()
	ctx := context.Background()
	s, err := q.js.Stream(ctx, bus.JobsStream)
	if err != nil {
		q.t.Fatal(err)
	}
	var left uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		info, err := s.Info(ctx)
		if err != nil {
			q.t.Fatal(err)
		}
		if left = info.State.Msgs; left == 0 {
			break
		}
	}
	return left
}

// deliveries is how many times the workers' consumer has delivered any job.
func (q queue) deliveries() uint64 {
	q.t.Helper()
	c, err := q.js.Consumer(context.Background(), bus.JobsStream, "worker")
	if err != nil {
		q.t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		q.t.Fatal(err)
	}
	return info.Delivered.Consumer
}

func TestWorkerStoppedMidJobHandsItBack(t *testing.T) {
	s := jobstest.Start(t)
	q := newQueue(t, s.Bus)
	stop := s.StartWorker(t, 0)
	ctx := context.Background()
	v, err := s.Indexer.Submit(ctx, "default", sharedtest.Clip(t, "car-detection.mp4"), jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		row, err := s.Store.Video(ctx, "default", v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.Status == store.StatusIndexing && row.FramesDone > 0 {
			break
		}
		if row.Status == store.StatusReady || row.Status == store.StatusFailed {
			t.Fatalf("the job ended before the worker could be stopped: %+v", row)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	row, err := s.Store.Video(ctx, "default", v.ID)
	if err != nil || row.Status != store.StatusQueued || row.Error != "" {
		t.Fatalf("after the worker stopped mid-job the row is %+v (%v), want queued", row, err)
	}
	s.StartWorker(t, 0)
	out := s.Wait(t, v.ID)
	if out.Video.Status != store.StatusReady || out.Moments == 0 {
		t.Errorf("the second worker left %+v with %d moments, want ready with moments", out.Video, out.Moments)
	}
	if left := q.drained(); left != 0 {
		t.Errorf("%d jobs left on the queue", left)
	}
}

func TestPoisonJobsAreTerminated(t *testing.T) {
	s := jobstest.Start(t)
	q := newQueue(t, s.Bus)
	s.StartWorker(t, 0)
	ctx := context.Background()
	if _, err := q.js.Publish(ctx, bus.JobsSubject, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	gone := bus.Job{Tenant: "default", VideoID: 424242, Path: "/nowhere.mp4", Submission: "x"}
	if err := s.Bus.PublishJob(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// The worker goes on to the next job, which finishes only after the two before it were handled.
	out := s.Index(t, sharedtest.Clip(t, "dog.mp4"), jobs.Options{})
	if out.Video.Status != store.StatusReady {
		t.Errorf("after poison jobs: %+v", out.Video)
	}
	if left := q.drained(); left != 0 {
		t.Errorf("%d jobs left on the queue, want the poison ones terminated", left)
	}
	if n := q.deliveries(); n != 3 {
		t.Errorf("%d deliveries for 3 jobs, want each delivered once", n)
	}
}

func TestHeartbeatsKeepALongJobOnOneWorker(t *testing.T) {
	s := jobstest.Start(t)
	q := newQueue(t, s.Bus)
	// Two workers, and an ack wait far shorter than the job: without heartbeats the job would be
	// handed to the idle worker while the first still runs it.
	const ackWait = 3 * time.Second
	s.StartWorker(t, ackWait)
	s.StartWorker(t, ackWait)
	started := time.Now()
	out := s.Index(t, sharedtest.Clip(t, "car-detection.mp4"), jobs.Options{})
	took := time.Since(started)
	if out.Video.Status != store.StatusReady {
		t.Fatalf("job ended %+v", out.Video)
	}
	if took < ackWait {
		t.Skipf("the job took %s, too short to show heartbeats at work against a %s ack wait", took, ackWait)
	}
	if n := q.deliveries(); n != 1 {
		t.Errorf("a job of %s was delivered %d times with a %s ack wait, want once", took, n, ackWait)
	}
}
