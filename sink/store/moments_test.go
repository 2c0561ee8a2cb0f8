package store_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"maps"
	"slices"
	"testing"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/track"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

// jpegOf returns a w×h JPEG of one colour.
func jpegOf(t *testing.T, w, h int, c color.Gray) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = c.Y
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteMomentsThumbnails(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	v, err := s.QueueUpload(ctx, "acme", "/a.mp4", "a.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	write := func(ms ...pipeline.Moment) {
		t.Helper()
		if _, err := s.WriteMoments(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	thumbnail := func(id string) ([]byte, store.Moment) {
		t.Helper()
		img, _, err := s.Thumbnail(ctx, "acme", id)
		if err != nil {
			t.Fatalf("thumbnail: %v", err)
		}
		m, err := s.Moment(ctx, "acme", id)
		if err != nil {
			t.Fatalf("moment: %v", err)
		}
		return img, m
	}

	// Opened: a first thumbnail with its boxes.
	opened := moment(v.ID, "acme", 1, "a person")
	opened.Objects, opened.Tracks = map[string]int{"person": 1}, map[string]int{"person": 1}
	opened.Thumbnail = jpegOf(t, 64, 36, color.Gray{Y: 50})
	opened.Boxes = []track.Box{{Class: "person", Track: 1, Score: 0.7, X1: 1, Y1: 2, X2: 30, Y2: 35}}
	write(opened)
	img, m := thumbnail(opened.ID)
	if !bytes.Equal(img, opened.Thumbnail) || m.ThumbnailWidth != 64 || m.ThumbnailHeight != 36 || !slices.Equal(m.Boxes, opened.Boxes) {
		t.Fatalf("after opened: %d bytes, moment %+v", len(img), m)
	}

	// Updated without a thumbnail (the best frame stayed): span and counts move, the thumbnail stays.
	updated := opened
	updated.EndS, updated.Caption = opened.EndS+10, "2 people"
	updated.Objects, updated.Tracks = map[string]int{"person": 2}, map[string]int{"person": 3}
	updated.Thumbnail, updated.Boxes = nil, nil
	write(updated)
	img, m = thumbnail(opened.ID)
	if !bytes.Equal(img, opened.Thumbnail) || !slices.Equal(m.Boxes, opened.Boxes) {
		t.Errorf("a message without a thumbnail changed it: %d bytes, boxes %+v", len(img), m.Boxes)
	}
	if m.EndS != updated.EndS || m.Caption != "2 people" || !maps.Equal(m.Objects, updated.Objects) || !maps.Equal(m.Tracks, updated.Tracks) {
		t.Errorf("after updated: %+v", m)
	}

	// Closed with a better frame: the thumbnail is replaced; redelivering it changes nothing.
	closed := updated
	closed.EndS += 3
	closed.Thumbnail = jpegOf(t, 32, 18, color.Gray{Y: 200})
	closed.Boxes = []track.Box{{Class: "person", Track: 3, Score: 0.9, X1: 4, Y1: 4, X2: 20, Y2: 18}}
	write(closed)
	_, changed, err := s.Thumbnail(ctx, "acme", opened.ID)
	if err != nil {
		t.Fatal(err)
	}
	write(closed, closed)
	img, m = thumbnail(opened.ID)
	if !bytes.Equal(img, closed.Thumbnail) || m.ThumbnailWidth != 32 || m.ThumbnailHeight != 18 || !slices.Equal(m.Boxes, closed.Boxes) {
		t.Errorf("after closed: %d bytes, moment %+v", len(img), m)
	}
	if _, again, _ := s.Thumbnail(ctx, "acme", opened.ID); !again.Equal(changed) {
		t.Errorf("redelivery rewrote the thumbnail: updated at %v, then %v", changed, again)
	}

	// In one batch, a later message without a thumbnail keeps the earlier one's.
	other := moment(v.ID, "acme", 2, "a car")
	other.Thumbnail = jpegOf(t, 16, 16, color.Gray{Y: 90})
	later := other
	later.Thumbnail, later.EndS = nil, other.EndS+1
	write(other, later)
	if img, m := thumbnail(other.ID); !bytes.Equal(img, other.Thumbnail) || m.EndS != later.EndS {
		t.Errorf("batch of two: %d bytes, end %v", len(img), m.EndS)
	}

	// A thumbnail that is no JPEG is left out; its moment still lands.
	broken := moment(v.ID, "acme", 3, "a dog")
	broken.Thumbnail = []byte("not a jpeg")
	write(broken)
	if _, _, err := s.Thumbnail(ctx, "acme", broken.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("broken thumbnail: %v, want ErrNotFound", err)
	}
	if m, err := s.Moment(ctx, "acme", broken.ID); err != nil || m.ThumbnailWidth != 0 || m.Boxes == nil {
		t.Errorf("moment with a broken thumbnail: %+v, %v", m, err)
	}

	// Another tenant sees neither; pruning a moment drops its thumbnail.
	if _, err := s.Moment(ctx, "other", opened.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other tenant's moment: %v", err)
	}
	if _, _, err := s.Thumbnail(ctx, "other", opened.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other tenant's thumbnail: %v", err)
	}
	if _, err := s.PruneMoments(ctx, v.ID, []string{other.ID, broken.ID}); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM thumbnails").Scan(&left); err != nil || left != 1 {
		t.Errorf("%d thumbnails after pruning (%v), want 1", left, err)
	}
}

// TestWriteMomentsKeepsLatestRevision: a message delayed behind a later revision of its moment,
// as a caption worker's enrichment can be, or redelivered after it, changes nothing, in separate
// batches or in one.
func TestWriteMomentsKeepsLatestRevision(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	v, err := s.QueueUpload(ctx, "acme", "/a.mp4", "a.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	// revisions returns a moment's messages 0, 1 and 2, each with its own thumbnail.
	revisions := func(i int) (r0, r1, r2 pipeline.Moment) {
		r0 = moment(v.ID, "acme", i, "2 cars")
		r0.Thumbnail = jpegOf(t, 16, 16, color.Gray{Y: 10})
		r1, r2 = r0, r0
		r1.Revision, r1.Caption, r1.Thumbnail = 1, "3 cars", jpegOf(t, 8, 8, color.Gray{Y: 120})
		r2.Revision, r2.Caption, r2.Thumbnail = 2, "A red car parked on the street.", jpegOf(t, 32, 32, color.Gray{Y: 240})
		return r0, r1, r2
	}
	check := func(want pipeline.Moment, when string) {
		t.Helper()
		m, err := s.Moment(ctx, "acme", want.ID)
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := s.Thumbnail(ctx, "acme", want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Caption != want.Caption || !bytes.Equal(img, want.Thumbnail) {
			t.Errorf("%s: caption %q, %d-byte thumbnail; want revision 2's", when, m.Caption, len(img))
		}
	}
	r0, r1, r2 := revisions(1)
	for _, m := range []pipeline.Moment{r0, r2, r1, r0} {
		if _, err := s.WriteMoments(ctx, []pipeline.Moment{m}); err != nil {
			t.Fatal(err)
		}
	}
	check(r2, "revisions 0, 2, 1, 0 in separate batches")
	r0, r1, r2 = revisions(2)
	if _, err := s.WriteMoments(ctx, []pipeline.Moment{r0, r2, r1}); err != nil {
		t.Fatal(err)
	}
	check(r2, "revisions 0, 2, 1 in one batch")
}
