package bus

// This file owns the index-job work queue: the VIGIL_JOBS stream, the job publisher and the
// durable pull consumer that workers share.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JobsStream is the work queue of index jobs; JobsSubject is the one subject on it.
const (
	JobsStream  = "VIGIL_JOBS"
	JobsSubject = "vigil.jobs.index"
)

// Job asks a worker to index one file whose videos row is queued.
type Job struct {
	Tenant  string `json:"tenant"`
	VideoID int64  `json:"video_id"`
	Path    string `json:"path"`
	// Force runs the job even when the video is already ready.
	Force bool `json:"force,omitempty"`
	// Submission names one request to index the video. With the video ID it makes the
	// Nats-Msg-Id, so a retried publish is stored once and a new request is never taken for one.
	Submission string `json:"submission"`
}

// createJobsStream makes sure the work queue exists. A work queue removes a job once it is acked
// or terminated, so the stream holds only work still to do.
func (b *Bus) createJobsStream(ctx context.Context, replicas int) error {
	_, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        JobsStream,
		Description: "Index jobs for uploaded files, on their way to a worker",
		Subjects:    []string{JobsSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  10 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("nats: stream %s: %w", JobsStream, err)
	}
	return nil
}

// PublishJob enqueues job and waits for JetStream to store it.
func (b *Bus) PublishJob(ctx context.Context, job Job) error {
	if job.Submission == "" {
		return fmt.Errorf("publish job for video %d: no submission id", job.VideoID)
	}
	data, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("publish job for video %d: %w", job.VideoID, err)
	}
	id := fmt.Sprintf("video-%d-%s", job.VideoID, job.Submission)
	if _, err := b.js.Publish(ctx, JobsSubject, data, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish job for video %d: %w", job.VideoID, err)
	}
	return nil
}

// JobConsumer hands index jobs to a worker from the durable consumer all workers share.
type JobConsumer struct {
	c       jetstream.Consumer
	ackWait time.Duration
}

// JobDelivery is one job message: a job, or the reason it could not be decoded.
type JobDelivery struct {
	Job Job
	// Err is set for a message that is not a job; it will never decode, so Term it.
	Err error
	// Attempt counts the deliveries of this message, from 1.
	Attempt int
	msg     jetstream.Msg
}

// Ack confirms the job; call it only after its outcome is recorded.
func (d JobDelivery) Ack() error { return d.msg.Ack() }

// Nak hands the job back for redelivery after delay.
func (d JobDelivery) Nak(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// InProgress restarts the job's ack wait; a long job sends it so it is not redelivered.
func (d JobDelivery) InProgress() error { return d.msg.InProgress() }

// Term drops a poison job for good, recording why on the server.
func (d JobDelivery) Term(reason string) error { return d.msg.TermWithReason(reason) }

// Jobs opens the durable consumer named durable on the jobs stream. ackWait is how long a
// delivered job may go without an ack or InProgress before JetStream hands it to another worker;
// it defaults to 30s.
func (b *Bus) Jobs(ctx context.Context, durable string, ackWait time.Duration) (*JobConsumer, error) {
	if ackWait <= 0 {
		ackWait = 30 * time.Second
	}
	c, err := b.js.CreateOrUpdateConsumer(ctx, JobsStream, jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s: %w", durable, err)
	}
	return &JobConsumer{c: c, ackWait: ackWait}, nil
}

// AckWait is the consumer's ack wait.
func (c *JobConsumer) AckWait() time.Duration { return c.ackWait }

// Next waits until a job arrives or ctx ends. It pulls one message only when asked, so no job
// sits in a busy worker's buffer while its ack wait runs out.
func (c *JobConsumer) Next(ctx context.Context) (JobDelivery, error) {
	for {
		// A pull sent with ctx already done would still reach the server, which could hand it a
		// job that nobody then reads until its ack wait ends.
		if err := ctx.Err(); err != nil {
			return JobDelivery{}, err
		}
		// The pull takes ctx's cancellation but not its deadline, which would become the pull's
		// expiry, and which the client refuses once it is close; each pull expires after 30s.
		pull, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(ctx, cancel)
		msg, err := c.c.Next(jetstream.FetchContext(pull))
		stop()
		cancel()
		switch {
		case err == nil:
			return decodeJob(msg), nil
		case ctx.Err() != nil:
			return JobDelivery{}, ctx.Err()
		case errors.Is(err, nats.ErrTimeout):
			continue // no job within one pull: ask again
		case errors.Is(err, nats.ErrConnectionClosed):
			return JobDelivery{}, ErrClosed
		default:
			return JobDelivery{}, fmt.Errorf("nats: next job: %w", err)
		}
	}
}

func decodeJob(msg jetstream.Msg) JobDelivery {
	d := JobDelivery{msg: msg, Attempt: 1}
	if meta, err := msg.Metadata(); err == nil {
		d.Attempt = int(meta.NumDelivered)
	}
	if err := json.Unmarshal(msg.Data(), &d.Job); err != nil {
		d.Err = fmt.Errorf("not an index job: %w", err)
	} else if d.Job.Tenant == "" || d.Job.VideoID <= 0 || d.Job.Path == "" {
		d.Err = fmt.Errorf("index job without tenant, video or path: %s", msg.Data())
	}
	return d
}
