// Package bustest gives tests a real JetStream: an embedded NATS server on a random loopback port
// with its store in the test's temporary directory.
package bustest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/vigilcam/vigil/sink/bus"
)

// Open starts a private embedded server and connects to it; both end with the test.
func Open(t testing.TB) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{
		// Port -1 asks the server for a free port, so parallel test binaries never meet.
		Listen:   "127.0.0.1:-1",
		StoreDir: t.TempDir(),
		Name:     t.Name(),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
