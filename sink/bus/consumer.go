package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilcam/vigil/pipeline"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("consumer closed")

// Consumer reads moments from a durable pull consumer shared by every sink process.
type Consumer struct {
	iter jetstream.MessagesContext
}

// Delivery is one message: a moment, or the reason it could not be decoded.
type Delivery struct {
	Moment pipeline.Moment
	// Err is set for a message that is not a moment; it will never decode, so Term it.
	Err error
	msg jetstream.Msg
}

// Ack confirms the delivery; call it only after the moment is committed.
func (d Delivery) Ack() error { return d.msg.Ack() }

// Nak asks for redelivery after delay.
func (d Delivery) Nak(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// Term drops a poison message for good, recording why on the server.
func (d Delivery) Term(reason string) error { return d.msg.TermWithReason(reason) }

// Moments opens the durable consumer named durable on the moments stream. ackWait is how long a
// delivered, unacknowledged message waits before JetStream redelivers it; maxPending caps the
// messages delivered and not yet acknowledged.
func (b *Bus) Moments(ctx context.Context, durable string, ackWait time.Duration, maxPending int) (*Consumer, error) {
	c, err := b.js.CreateOrUpdateConsumer(ctx, MomentsStream, jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s: %w", durable, err)
	}
	iter, err := c.Messages(jetstream.PullMaxMessages(maxPending))
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s: %w", durable, err)
	}
	return &Consumer{iter: iter}, nil
}

// Next waits for a first message, then collects more until max or until wait has passed since
// the first, so a busy stream gives full batches and a quiet one is not held back.
func (c *Consumer) Next(ctx context.Context, max int, wait time.Duration) ([]Delivery, error) {
	msg, err := c.iter.Next(jetstream.NextContext(ctx))
	if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, err
	}
	batch := []Delivery{decode(msg)}
	fill, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(batch) < max {
		msg, err := c.iter.Next(jetstream.NextContext(fill))
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			break
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			break // the batch in hand is still written; its acks may be lost, redelivery is harmless
		}
		if err != nil {
			return batch, err
		}
		batch = append(batch, decode(msg))
	}
	return batch, nil
}

func decode(msg jetstream.Msg) Delivery {
	d := Delivery{msg: msg}
	if err := json.Unmarshal(msg.Data(), &d.Moment); err != nil {
		d.Err = fmt.Errorf("not a moment: %w", err)
	} else if _, err := uuid.Parse(d.Moment.ID); err != nil {
		d.Err = fmt.Errorf("moment id %q: %w", d.Moment.ID, err)
	} else if d.Moment.Tenant == "" || d.Moment.VideoID <= 0 {
		d.Err = fmt.Errorf("moment %s: no tenant or video", d.Moment.ID)
	}
	return d
}

// Close stops delivery; unacknowledged messages go to other consumers after their ack wait.
func (c *Consumer) Close() { c.iter.Stop() }
