package sink_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink"
	"github.com/vigilcam/vigil/sink/bus"
	"github.com/vigilcam/vigil/sink/bus/bustest"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func moments(video int64, n int) []pipeline.Moment {
	var out []pipeline.Moment
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		out = append(out, pipeline.Moment{
			ID: pipeline.MomentID(at, []byte("test"), time.Duration(i)), Tenant: "acme", VideoID: video,
			Source: "gate", StartS: float64(i), EndS: float64(i) + 0.5, StartedAt: at, EndedAt: at.Add(time.Second / 2),
			Objects: map[string]int{"person": 1}, Caption: fmt.Sprintf("a person, moment %d", i),
		})
	}
	return out
}

// drained waits until the durable consumer has nothing left to deliver or to be acked.
func drained(t *testing.T, b *bus.Bus) {
	t.Helper()
	nc, err := nats.Connect(b.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := js.Consumer(context.Background(), bus.MomentsStream, "sink")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer not drained: %d pending, %d awaiting ack", info.NumPending, info.NumAckPending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A batch committed but never acknowledged (the sink died in between) is delivered again; the
// second delivery must leave each row once. A message that is not a moment must not hold up the
// others.
func TestRedeliveredBatchYieldsEachRowOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	b := bustest.Open(t)
	v, err := st.QueueUpload(ctx, "acme", "/gate.mp4", "gate.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	ms := moments(v.ID, 100)
	for i := range ms {
		if err := b.Publish(ctx, &ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(b.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("vigil.moments.acme.1", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	nc.Close()

	// The first sink takes a batch, commits it, and dies before acknowledging.
	first, err := b.Moments(ctx, "sink", time.Second, 1000)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := first.Next(ctx, 60, 200*time.Millisecond)
	if err != nil || len(batch) != 60 {
		t.Fatalf("first batch: %d deliveries, %v", len(batch), err)
	}
	var committed []pipeline.Moment
	for _, d := range batch {
		committed = append(committed, d.Moment)
	}
	if _, err := st.WriteMoments(ctx, committed); err != nil {
		t.Fatal(err)
	}
	first.Close()

	// A new sink gets everything, the 60 again after their ack wait.
	second, err := b.Moments(ctx, "sink", time.Second, 1000)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	reg := prometheus.NewRegistry()
	done := make(chan error, 1)
	s := sink.New(sink.Config{BatchSize: 32}, second, st, reg, slog.New(slog.DiscardHandler))
	go func() { done <- s.Run(runCtx) }()
	drained(t, b)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var rows, distinct int
	if err := st.Pool().QueryRow(ctx, "SELECT count(*), count(DISTINCT moment_uid) FROM video_events").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != 100 || distinct != 100 {
		t.Errorf("%d rows, %d distinct moments, want 100 and 100", rows, distinct)
	}
	written := counter(t, reg, "vigil_sink_moments_written_total")
	if written < 100 {
		t.Errorf("sink wrote %v messages, want at least 100 (60 of them redelivered)", written)
	}
	if poison := counter(t, reg, "vigil_sink_poison_messages_total"); poison != 1 {
		t.Errorf("%v poison messages terminated, want 1", poison)
	}
}

// While PostgreSQL refuses a batch, nothing is acknowledged: the batch comes back until it commits.
func TestFailedCommitIsRetried(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	b := bustest.Open(t)
	v, err := st.QueueUpload(ctx, "acme", "/gate.mp4", "gate.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	// Make every write fail until the trigger is dropped.
	if _, err := st.Pool().Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON video_events FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	ms := moments(v.ID, 20)
	for i := range ms {
		if err := b.Publish(ctx, &ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Moments(ctx, "sink", 30*time.Second, 1000)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	reg := prometheus.NewRegistry()
	done := make(chan error, 1)
	s := sink.New(sink.Config{RetryDelay: 100 * time.Millisecond}, c, st, reg, slog.New(slog.DiscardHandler))
	go func() { done <- s.Run(runCtx) }()
	for counter(t, reg, "vigil_sink_batch_failures_total") < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := st.Pool().Exec(ctx, "DROP TRIGGER refuse ON video_events"); err != nil {
		t.Fatal(err)
	}
	drained(t, b)
	cancel()
	<-done
	if n, err := st.CountVideoMoments(ctx, v.ID); err != nil || n != 20 {
		t.Errorf("%d moments committed (%v), want 20", n, err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A moment is published when it opens, as it grows and when it closes, all under one ID: every
// revision must reach the store, and a publish retried within the duplicate window only once.
func TestLaterRevisionsReachTheStore(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	b := bustest.Open(t)
	v, err := st.QueueUpload(ctx, "acme", "/gate.mp4", "gate.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	m := moments(v.ID, 1)[0]
	for rev, end := range []float64{0.5, 4, 9} {
		m.Revision, m.EndS = rev, end
		for range 2 { // the second is a retry of the same message
			if err := b.Publish(ctx, &m); err != nil {
				t.Fatal(err)
			}
		}
	}
	c, err := b.Moments(ctx, "sink", time.Second, 100)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	reg := prometheus.NewRegistry()
	done := make(chan error, 1)
	go func() { done <- sink.New(sink.Config{}, c, st, reg, slog.New(slog.DiscardHandler)).Run(runCtx) }()
	drained(t, b)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var end float64
	if err := st.Pool().QueryRow(ctx, "SELECT end_s FROM video_events WHERE moment_uid = $1", m.ID).Scan(&end); err != nil {
		t.Fatal(err)
	}
	if end != 9 {
		t.Errorf("stored end %v, want 9 from the last revision", end)
	}
	if written := counter(t, reg, "vigil_sink_moments_written_total"); written != 3 {
		t.Errorf("sink wrote %v messages, want the 3 revisions, each once", written)
	}
}
