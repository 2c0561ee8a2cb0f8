//go:build cgo

package decode_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/vigilcam/vigil/ingest/decode"
)

// rss reads this process's resident set size from /proc/self/statm.
func rss(t *testing.T) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("cannot read resident memory: %v", err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		t.Fatalf("/proc/self/statm %q: %v", data, err)
	}
	return resident * int64(os.Getpagesize())
}

// TestOpenCloseLeak catches libav objects left behind by Close: one leaked H.264 decoder with
// its 720p picture pool holds megabytes, so 200 of them would stand far above the bound.
func TestOpenCloseLeak(t *testing.T) {
	path := clip(t, "cars.mp4")
	cycle := func() {
		f, err := decode.OpenFile(path, decode.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Next(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // let allocators and thread stacks reach their steady size
		cycle()
	}
	before := rss(t)
	for range 200 {
		cycle()
	}
	grown := rss(t) - before
	t.Logf("resident memory grew by %.1f MiB over 200 open/decode/close cycles", float64(grown)/(1<<20))
	if grown > 64<<20 {
		t.Errorf("resident memory grew by %d MiB over 200 cycles", grown>>20)
	}
}
