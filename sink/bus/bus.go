// Package bus owns vigil's NATS JetStream: the embedded server of a single machine or the
// connection to an external cluster, the streams, the moment publisher with Nats-Msg-Id, the
// durable pull consumer the sink reads from, and the work queue of index jobs.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilcam/vigil/pipeline"
)

// Stream and subject names; subjects are vigil.moments.<tenant>.<video id>.
const (
	MomentsStream  = "VIGIL_MOMENTS"
	momentsSubject = "vigil.moments"
)

// Config configures a Bus.
type Config struct {
	// URL of an external NATS; empty embeds a server.
	URL string
	// Listen is the embedded server's address; a server already listening there is used instead.
	Listen string
	// StoreDir holds the embedded server's JetStream files.
	StoreDir string
	// Replicas of each stream. It defaults to 1.
	Replicas int
	// Name identifies this process's connection in the server's monitoring.
	Name string
}

// Bus is a JetStream connection, with the embedded server when this process runs one.
type Bus struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// Open connects to the configured NATS, or to a local vigil's embedded server, or starts one, and
// makes sure the streams exist.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	b := &Bus{log: log}
	opts := []nats.Option{nats.Name(cfg.Name), nats.MaxReconnects(-1)}
	var err error
	switch {
	case cfg.URL != "":
		b.nc, err = nats.Connect(cfg.URL, opts...)
	default:
		url := "nats://" + cfg.Listen
		if b.nc, err = nats.Connect(url, append(opts, nats.Timeout(time.Second))...); err == nil {
			log.Info("using the NATS server of another local vigil process", "url", url)
			break
		}
		if b.srv, err = startServer(cfg); err != nil {
			return nil, err
		}
		b.nc, err = nats.Connect("", append(opts, nats.InProcessServer(b.srv))...)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("nats: connect: %w", err), b.Close())
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		return nil, errors.Join(fmt.Errorf("nats: %w", err), b.Close())
	}
	_, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        MomentsStream,
		Description: "Moments from the pipeline, on their way to the sink",
		Subjects:    []string{momentsSubject + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		// Messages stay after the sink acked them, for other consumers (alerts); a week bounds it.
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 10 * time.Minute,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("nats: stream %s: %w", MomentsStream, err), b.Close())
	}
	if err := b.createJobsStream(ctx, cfg.Replicas); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return b, nil
}

// startServer runs an embedded NATS server with JetStream on cfg.Listen.
func startServer(cfg Config) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("nats: listen port %q: %w", portText, err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "vigil-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: embedded server on %s did not start (port in use, or %s not writable?)", cfg.Listen, cfg.StoreDir)
	}
	return srv, nil
}

// Embedded reports whether this process runs the NATS server.
func (b *Bus) Embedded() bool { return b.srv != nil }

// ServerURL is the URL of the server this bus is connected to.
func (b *Bus) ServerURL() string {
	if b.srv != nil {
		// The in-process connection has no URL of its own; other processes use this one.
		return b.srv.ClientURL()
	}
	return b.nc.ConnectedUrl()
}

// Publish sends a moment and waits for JetStream to store it. The moment's ID and revision make
// the Nats-Msg-Id, so a publish retried within the duplicate window is stored once while the
// moment's later messages still go through.
func (b *Bus) Publish(ctx context.Context, m *pipeline.Moment) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("publish moment %s: %w", m.ID, err)
	}
	subject := fmt.Sprintf("%s.%s.%d", momentsSubject, m.Tenant, m.VideoID)
	if _, err := b.js.Publish(ctx, subject, data, jetstream.WithMsgID(fmt.Sprintf("%s.%d", m.ID, m.Revision))); err != nil {
		return fmt.Errorf("publish moment %s: %w", m.ID, err)
	}
	return nil
}

// Close disconnects and stops the embedded server; it is safe to call twice.
func (b *Bus) Close() error {
	var err error
	if b.nc != nil && !b.nc.IsClosed() {
		err = b.nc.Drain()
		// Drain returns at once; wait for it so that in-flight acks reach the server.
		for i := 0; i < 100 && !b.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
	return err
}
