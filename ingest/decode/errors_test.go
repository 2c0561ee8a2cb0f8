//go:build cgo

package decode_test

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilcam/vigil/ingest/decode"
)

// openAndDrain returns the first error from opening path or decoding it to the end.
func openAndDrain(t *testing.T, path string) error {
	t.Helper()
	f, err := decode.OpenFile(path, decode.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	frames, err := drain(t, f)
	t.Logf("opened; %d frames before the error", len(frames))
	return err
}

// halfOf writes the first half of a clip's bytes to a temporary file.
func halfOf(t *testing.T, name string) string {
	data, err := os.ReadFile(clip(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "half-"+name, data[:len(data)/2])
}

func writeTemp(t testing.TB, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noise(n int) []byte {
	data := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(data)
	return data
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		file func(t *testing.T) string
		// want is part of the error message.
		want string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nothing.mp4") }, "no such file"},
		{"directory", func(t *testing.T) string { return t.TempDir() }, "not a regular file"},
		{"text", func(t *testing.T) string {
			return writeTemp(t, "notes.txt", []byte(strings.Repeat("Camera 3 was moved to the east gate.\n", 50)))
		}, "not a video file"},
		{"random bytes", func(t *testing.T) string { return writeTemp(t, "noise", noise(64<<10)) }, "not a video file"},
		{"random bytes named .mp4", func(t *testing.T) string { return writeTemp(t, "noise.mp4", noise(64<<10)) }, "not a video file"},
		{"audio only", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "tone.m4a")
			cmd := exec.Command(ffmpegPath(t), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", p)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			return p
		}, "no video stream"},
		{"half of car-detection.mp4", func(t *testing.T) string { return halfOf(t, "car-detection.mp4") }, "truncated"},
		{"half of cars.mp4", func(t *testing.T) string { return halfOf(t, "cars.mp4") }, "moov atom not found"},
		{"half of vtest.avi", func(t *testing.T) string { return halfOf(t, "vtest.avi") }, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.file(t)
			err := openAndDrain(t, path)
			switch {
			case err == nil:
				t.Fatal("no error")
			case errors.Is(err, io.EOF):
				t.Fatalf("clean end of stream: %v", err)
			case !strings.Contains(err.Error(), c.want):
				t.Errorf("error %q does not say %q", err, c.want)
			case !strings.Contains(err.Error(), path):
				t.Errorf("error %q does not name the file", err)
			}
			t.Log(err)
		})
	}
}

func TestMissingIsNotExist(t *testing.T) {
	_, err := decode.OpenFile(filepath.Join(t.TempDir(), "gone.avi"), decode.Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v is not fs.ErrNotExist", err)
	}
}

func TestBadOptions(t *testing.T) {
	_, err := decode.OpenFile(writeTemp(t, "any.mp4", nil), decode.Options{FPS: -1})
	if err == nil {
		t.Fatal("FPS -1 accepted")
	}
}

// FuzzOpen feeds arbitrary files to the demuxers and decoders; it asserts only that they neither
// crash nor hang.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free"))
	f.Add([]byte("RIFF\x00\x10\x00\x00AVI LIST\x00\x01\x00\x00hdrlavih8\x00\x00\x00"))
	f.Add([]byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"))
	f.Add([]byte("\x00\x00\x00\x01\x67\x42\xc0\x1e\xda\x02\x80\xbf\xe5\xc0\x44\x00\x00\x00\x01\x68\xce\x3c\x80"))
	for _, c := range clips {
		p := filepath.Join(sharedDir(f), "media", c.name)
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data[:min(len(data), 16<<10)])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := decode.OpenFile(writeTemp(t, "input", data), decode.Options{})
		if err != nil {
			return
		}
		defer d.Close()
		for range 3 {
			if _, err := d.Next(); err != nil {
				return
			}
		}
	})
}

// TestContainers remuxes an H.264 clip with its AAC track into other containers: each decodes
// cleanly in full, and each whose header announces its length reports a cut copy as truncated.
func TestContainers(t *testing.T) {
	ffmpeg := ffmpegPath(t)
	src := clip(t, "car-detection.mp4")
	for _, c := range []struct {
		ext string
		// cut is what the error for the first half of the file says; "" where the container
		// announces no length, so that a cut file ends like a short one.
		cut string
	}{
		{"mkv", "truncated: data ends at"},
		{"mov", "moov atom not found"},
		{"flv", "truncated: data ends at"},
		{"ts", ""},
	} {
		t.Run(c.ext, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "remux."+c.ext)
			cmd := exec.Command(ffmpeg, "-v", "error", "-i", src, "-c", "copy", path)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			_, frames, _ := decodeAll(t, path, decode.Options{})
			if len(frames) != 377 {
				t.Errorf("decoded %d frames, want 377", len(frames))
			}
			if c.cut == "" {
				return
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			err = openAndDrain(t, writeTemp(t, "half."+c.ext, data[:len(data)/2]))
			if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), c.cut) {
				t.Errorf("first half: %v, want an error saying %q", err, c.cut)
			}
			t.Log(err)
		})
	}
}

// TestDroppedFrames decodes an AVI whose recorder dropped two frames in three: the header counts
// the empty chunks written in their place, which is not a truncation.
func TestDroppedFrames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dropped.avi")
	cmd := exec.Command(ffmpegPath(t), "-v", "error", "-f", "lavfi", "-i", "testsrc=rate=10:duration=10:size=320x240",
		"-vf", `select=not(mod(n\,3))`, "-fps_mode", "passthrough", "-c:v", "mpeg4", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	info, frames, _ := decodeAll(t, path, decode.Options{})
	if info.Frames != 100 || len(frames) != 34 {
		t.Errorf("decoded %d frames of %d announced, want 34 of 100", len(frames), info.Frames)
	}
	for i := 1; i < len(frames); i++ {
		if gap := frames[i].PTS - frames[i-1].PTS; gap != 300*time.Millisecond {
			t.Fatalf("frames %d and %d are %v apart, want 300ms", i-1, i, gap)
		}
	}
}
