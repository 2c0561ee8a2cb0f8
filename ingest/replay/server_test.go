//go:build cgo

package replay_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"

	"github.com/vigilcam/vigil/ingest/replay"
)

func TestURL(t *testing.T) {
	srv := newServer(t)
	path := clip(t, "dog.mp4")
	a, b := open(t, srv, path, replay.Options{}), open(t, srv, path, replay.Options{})
	prefix := "rtsp://" + srv.Addr() + "/replay/"
	if !strings.HasPrefix(a.URL(), prefix) || !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("URL %s, want %s<token> on loopback", a.URL(), prefix)
	}
	if a.URL() == b.URL() || len(a.URL()) < len(prefix)+26 {
		t.Errorf("URLs %s and %s, want distinct unguessable tokens", a.URL(), b.URL())
	}
}

// TestNotFound asks for a path that was never served and one whose replay has closed.
func TestNotFound(t *testing.T) {
	srv := newServer(t)
	rp := open(t, srv, clip(t, "dog.mp4"), replay.Options{})
	closed := rp.URL()
	rp.Close()
	for _, url := range []string{"rtsp://" + srv.Addr() + "/replay/0123456789abcdef0123456789abcdef", closed} {
		if _, err := dial(t, url, 0); !isStatus(err, base.StatusNotFound) {
			t.Errorf("%s: %v, want 404", url, err)
		}
	}
}

// TestSecondReader: the acknowledgements of one reader pace a lossless replay, so a second
// reader is turned away while the first one reads.
func TestSecondReader(t *testing.T) {
	rp := open(t, newServer(t), clip(t, "dog.mp4"), replay.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, done := playing(t, ctx, rp, 0)
	<-first.aus
	if _, err := dial(t, rp.URL(), 0); !isStatus(err, base.StatusServiceUnavailable) {
		t.Errorf("second reader: %v, want 503", err)
	}
	n := int64(1)
	rp.Ack(n)
	for {
		select {
		case <-first.aus:
			n++
			rp.Ack(n)
		case err := <-done:
			if err != nil || n != 244 {
				t.Fatalf("run: %v after %d access units, want nil after 244", err, n)
			}
			return
		}
	}
}

// TestReaderLeaves: a lossless replay whose reader goes away before the end fails.
func TestReaderLeaves(t *testing.T) {
	rp := open(t, newServer(t), clip(t, "dog.mp4"), replay.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rd, done := playing(t, ctx, rp, 0)
	for i := range 10 {
		<-rd.aus
		rp.Ack(int64(i + 1))
	}
	rd.c.Close()
	if err := <-done; !errors.Is(err, replay.ErrReaderLeft) {
		t.Fatalf("run: %v, want ErrReaderLeft", err)
	}
}

// TestReaderHangsUpAtEnd: a reader that leaves right after acknowledging the last access unit
// has read the whole replay.
func TestReaderHangsUpAtEnd(t *testing.T) {
	rp := open(t, newServer(t), clip(t, "dog.mp4"), replay.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rd, done := playing(t, ctx, rp, 0)
	for n := range rp.Info().Frames {
		<-rd.aus
		rp.Ack(n + 1)
	}
	rd.c.Close()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestClose: Close ends Run and the reader's session, and Close, Run and Ack after it are
// harmless.
func TestClose(t *testing.T) {
	srv := newServer(t)
	rp := open(t, srv, clip(t, "dog.mp4"), replay.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rd, done := playing(t, ctx, rp, 0)
	<-rd.aus // never acknowledged: Run waits
	if err := rp.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}
	rp.Close()
	if err := <-done; !errors.Is(err, replay.ErrClosed) {
		t.Errorf("run: %v, want ErrClosed", err)
	}
	if err := rd.c.Wait(); err == nil {
		t.Error("the reader's session did not end")
	}
	rp.Ack(5)
	if err := rp.Close(); err != nil {
		t.Error(err)
	}
	if err := rp.Run(ctx); !errors.Is(err, replay.ErrClosed) {
		t.Errorf("run after Close: %v, want ErrClosed", err)
	}
	srv.Close()
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
	if _, err := srv.Open(clip(t, "dog.mp4"), replay.Options{}); !errors.Is(err, replay.ErrClosed) {
		t.Errorf("open after Close: %v, want ErrClosed", err)
	}
}

// TestNoGoroutineLeak runs a server through a lossless replay, a real-time one nobody reads, and
// one never run; after Close, the goroutines are back to where they were.
func TestNoGoroutineLeak(t *testing.T) {
	path := clip(t, "dog.mp4")
	before := runtime.NumGoroutine()
	func() {
		srv, err := replay.New(replay.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		lossless, err := srv.Open(path, replay.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rd, _, err := replayAll(t, lossless, nil)
		if err != nil {
			t.Fatal(err)
		}
		rd.c.Close()
		live, err := srv.Open(path, replay.Options{RealTime: true, Loop: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := run(ctx, live)
		time.Sleep(100 * time.Millisecond)
		cancel()
		<-done
		if _, err := srv.Open(path, replay.Options{}); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
