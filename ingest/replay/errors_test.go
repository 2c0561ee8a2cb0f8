//go:build cgo

package replay_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/ingest/replay"
)

func halfOf(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(clip(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "half-"+name, data[:len(data)/2])
}

// TestOpenErrors gives Open files it cannot replay: each fails with an error that names the file
// and says why.
func TestOpenErrors(t *testing.T) {
	srv := newServer(t)
	for _, c := range []struct {
		name string
		file func(t *testing.T) string
		is   error
		// want is part of the message.
		want string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nothing.mp4") }, fs.ErrNotExist, "no such file"},
		{"directory", func(t *testing.T) string { return t.TempDir() }, replay.ErrNotVideo, "not a regular file"},
		{"text", func(t *testing.T) string {
			return writeTemp(t, "notes.txt", []byte(strings.Repeat("Camera 3 was moved to the east gate.\n", 50)))
		}, replay.ErrNotVideo, "not a video file"},
		{"audio only", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "tone.m4a")
			ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=1", p)
			return p
		}, replay.ErrNotVideo, "no video stream"},
		{"unknown codec", unknownCodec, replay.ErrUnsupported, "no decoder"},
		// cars.mp4 keeps its index at the end, so its first half has none.
		{"half of cars.mp4", func(t *testing.T) string { return halfOf(t, "cars.mp4") }, replay.ErrNotVideo, "damaged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.file(t)
			rp, err := srv.Open(path, replay.Options{})
			if err == nil {
				rp.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q, want %v saying %q and naming the file", err, c.is, c.want)
			}
			t.Log(err)
		})
	}
}

// unknownCodec renames the codec of vtest.avi to a fourcc no decoder knows.
func unknownCodec(t *testing.T) string {
	data, err := os.ReadFile(clip(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	head := data[:4096]
	for _, tag := range []string{"DIV3", "div3"} {
		head = bytes.ReplaceAll(head, []byte(tag), []byte("QQQQ"))
	}
	return writeTemp(t, "unknown.avi", append(head, data[4096:]...))
}

func TestBadOptions(t *testing.T) {
	srv := newServer(t)
	path := clip(t, "dog.mp4")
	for _, opts := range []replay.Options{{Window: -1}, {Loop: true}} {
		if rp, err := srv.Open(path, opts); !errors.Is(err, replay.ErrInvalidOption) {
			if rp != nil {
				rp.Close()
			}
			t.Errorf("options %+v: %v, want ErrInvalidOption", opts, err)
		}
	}
}

// TestTruncated replays the first half of a clip whose index comes first: the packets that are
// there go out, then Run reports the cut.
func TestTruncated(t *testing.T) {
	path := halfOf(t, "car-detection.mp4")
	rp := open(t, newServer(t), path, replay.Options{})
	_, got, err := replayAll(t, rp, nil)
	if !errors.Is(err, replay.ErrTruncated) || !strings.Contains(err.Error(), path) {
		t.Fatalf("run: %v, want ErrTruncated naming the file", err)
	}
	if len(got) == 0 || int64(len(got)) != rp.Progress().Written {
		t.Errorf("received %d access units, progress %+v", len(got), rp.Progress())
	}
	t.Logf("%v after %d access units", err, len(got))
}

// TestCorruptPacket breaks the NAL unit framing of one packet in the middle of a clip: the replay
// skips and counts it, and sends the others.
func TestCorruptPacket(t *testing.T) {
	path := clip(t, "car-detection.mp4")
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skipf("ffprobe not on PATH: %v", err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,size",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Packets []struct {
			Pos  int64 `json:"pos,string"`
			Size int64 `json:"size,string"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Packets) < 200 {
		t.Fatalf("ffprobe: %v, %d packets", err, len(doc.Packets))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The first NAL unit of packet 150 now claims more bytes than the packet has.
	pkt := doc.Packets[150]
	binary.BigEndian.PutUint32(data[pkt.Pos:], uint32(pkt.Size)+1000)
	rp := open(t, newServer(t), writeTemp(t, "damaged.mp4", data), replay.Options{})
	_, got, err := replayAll(t, rp, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if p := rp.Progress(); len(got) != len(doc.Packets)-1 || p.Corrupt != 1 || p.Written != int64(len(got)) {
		t.Errorf("received %d of %d access units, progress %+v, want all but one, one corrupt", len(got), len(doc.Packets), p)
	}
}

// TestDamagedData scribbles over the middle of clips, both sent as they are and transcoded: the
// replay ends, cleanly or with an error, and every access unit it wrote reached the reader.
func TestDamagedData(t *testing.T) {
	srv := newServer(t)
	for _, name := range []string{"car-detection.mp4", "vtest.avi"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(clip(t, name))
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 64 {
				at := len(data)/10 + rng.IntN(len(data)*8/10)
				for i := range 16 {
					data[at+i] = byte(rng.Uint32())
				}
			}
			rp, err := srv.Open(writeTemp(t, "damaged-"+name, data), replay.Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer rp.Close()
			_, got, err := replayAll(t, rp, nil)
			p := rp.Progress()
			if int64(len(got)) != p.Written {
				t.Errorf("received %d access units, progress %+v", len(got), p)
			}
			t.Logf("run: %v; progress %+v", err, p)
		})
	}
}
