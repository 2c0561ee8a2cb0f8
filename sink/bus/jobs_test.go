package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/bus/bustest"
)

// raw is a second, plain JetStream client on the test's server, to publish what vigil never would
// and to look at the stream from outside.
func raw(t *testing.T, b *bus.Bus) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(b.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func queued(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func next(t *testing.T, c *bus.JobConsumer) bus.JobDelivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPublishJobStoresARetryOnce(t *testing.T) {
	b := bustest.Open(t)
	js := raw(t, b)
	ctx := context.Background()
	job := bus.Job{Tenant: "default", VideoID: 7, Path: "/data/clip.mp4", Submission: "a"}
	for range 3 {
		if err := b.PublishJob(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	if n := queued(t, js); n != 1 {
		t.Errorf("a publish retried 3 times left %d jobs, want 1", n)
	}
	job.Submission = "b"
	if err := b.PublishJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	if n := queued(t, js); n != 2 {
		t.Errorf("a second submission of the same video left %d jobs, want 2", n)
	}
	job.Submission = ""
	if err := b.PublishJob(ctx, job); err == nil {
		t.Error("a job without a submission id was published")
	}
}

func TestJobDeliveries(t *testing.T) {
	b := bustest.Open(t)
	js := raw(t, b)
	ctx := context.Background()
	c, err := b.Jobs(ctx, "worker", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := bus.Job{Tenant: "default", VideoID: 3, Path: "/data/a.mp4", Force: true, Submission: "s1"}
	if err := b.PublishJob(ctx, want); err != nil {
		t.Fatal(err)
	}

	d := next(t, c)
	if d.Err != nil || d.Job != want || d.Attempt != 1 {
		t.Fatalf("first delivery: %+v", d)
	}
	if err := d.InProgress(); err != nil {
		t.Errorf("in progress: %v", err)
	}
	if err := d.Nak(0); err != nil {
		t.Fatal(err)
	}
	d = next(t, c)
	if d.Job != want || d.Attempt != 2 {
		t.Errorf("after a nak: %+v, want the same job as attempt 2", d)
	}
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}

	// Messages that are not jobs come out with the reason, and Term removes them for good.
	for _, data := range []string{"not json", `{"tenant":"default"}`} {
		if _, err := js.Publish(ctx, bus.JobsSubject, []byte(data)); err != nil {
			t.Fatal(err)
		}
		d := next(t, c)
		if d.Err == nil {
			t.Errorf("%q decoded as a job: %+v", data, d.Job)
		}
		if err := d.Term(d.Err.Error()); err != nil {
			t.Fatal(err)
		}
	}

	// Acked and terminated jobs leave the work queue; nothing else is delivered.
	deadline := time.Now().Add(5 * time.Second)
	for queued(t, js) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := queued(t, js); n != 0 {
		t.Errorf("%d jobs left on the queue after ack and term", n)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if d, err := c.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("empty queue: %+v, %v; want the context's error", d, err)
	}
}
