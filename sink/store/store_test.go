package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	url := storetest.URL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- store.Migrate(ctx, url) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	server, vector, err := store.Probe(ctx, url)
	if err != nil || server == "" || vector == "" {
		t.Fatalf("probe: server %q, pgvector %q: %v", server, vector, err)
	}
	s, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func moment(video int64, tenant string, i int, caption string) pipeline.Moment {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return pipeline.Moment{
		ID:     pipeline.MomentID(start, []byte(fmt.Sprint(video)), time.Duration(i)*time.Minute),
		Tenant: tenant, VideoID: video, Source: "clip.mp4",
		StartS: float64(i * 60), EndS: float64(i*60 + 5), StartedAt: start, EndedAt: start.Add(5 * time.Second),
		Objects: map[string]int{"car": 1}, Caption: caption, BestScore: 0.8,
		Models: map[string]string{"detector": "yolo.onnx"},
	}
}

func ids(ms []pipeline.Moment) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestClusterSizesItsBuffers(t *testing.T) {
	mem := store.MachineMemory()
	if mem == 0 {
		t.Skip("neither /proc/meminfo nor /sys/fs/cgroup/memory.max is readable")
	}
	s := storetest.Open(t)
	var buffers int64
	if err := s.Pool().QueryRow(context.Background(),
		"SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'").Scan(&buffers); err != nil {
		t.Fatal(err)
	}
	if want := min(max(mem/4, 128<<20), 8<<30) >> 20 << 20; buffers != want {
		t.Errorf("shared_buffers %d MB, want %d MB: a quarter of the machine's %d MB, from 128MB to 8GB", buffers>>20, want>>20, mem>>20)
	}
}

func TestWriteMomentsIsIdempotent(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	v, err := s.QueueUpload(ctx, "acme", "/videos/a.mp4", "a.mp4", "abc")
	if err != nil {
		t.Fatal(err)
	}
	var batch []pipeline.Moment
	for i := range 50 {
		batch = append(batch, moment(v.ID, "acme", i, "a car"))
	}
	// The same batch delivered twice, then again with a later version of one moment in it twice.
	for range 2 {
		if _, err := s.WriteMoments(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	newer := batch[7]
	newer.Caption = "a red car"
	if _, err := s.WriteMoments(ctx, []pipeline.Moment{batch[7], newer, batch[8]}); err != nil {
		t.Fatal(err)
	}
	var rows, distinct int
	var caption string
	err = s.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT moment_uid),
		max(caption) FILTER (WHERE moment_uid = $1) FROM video_events`, newer.ID).Scan(&rows, &distinct, &caption)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 50 || distinct != 50 || caption != "a red car" {
		t.Errorf("rows %d distinct %d caption %q, want 50, 50, \"a red car\"", rows, distinct, caption)
	}
	if n, err := s.CountMoments(ctx, ids(batch), nil); err != nil || n != 50 {
		t.Errorf("CountMoments = %d, %v", n, err)
	}
	searchMirrors(t, s, 50)
}

// searchMirrors checks that moment_search holds want moments, each as video_events has it now.
func searchMirrors(t *testing.T, s *store.Store, want int) {
	t.Helper()
	var mirrored, same int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE m.search = e.search
			AND m.ended_at = e.ended_at AND m.yolo_metadata = e.yolo_metadata AND m.video_id = e.video_id)
		FROM moment_search m LEFT JOIN video_events e USING (moment_uid)`).Scan(&mirrored, &same); err != nil {
		t.Fatal(err)
	}
	if mirrored != want || same != want {
		t.Errorf("moment_search holds %d moments, %d as video_events has them; want %d", mirrored, same, want)
	}
}

func TestWriteMomentsDropsForeignAndOrphans(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	a, err := s.QueueUpload(ctx, "acme", "/a.mp4", "a.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteMoments(ctx, []pipeline.Moment{
		moment(a.ID, "acme", 1, "ok"),
		moment(a.ID, "mallory", 2, "claims acme's video"),
		moment(a.ID+1000, "acme", 3, "video does not exist"),
	})
	if err != nil || n != 1 {
		t.Fatalf("wrote %d (%v), want only the matching moment", n, err)
	}
}

func TestVideoLifecycle(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	v, err := s.QueueUpload(ctx, "acme", "/x/a.mp4", "a.mp4", "sum1")
	if err != nil || v.Status != store.StatusQueued {
		t.Fatalf("queue: %+v %v", v, err)
	}
	rec := time.Date(2018, 4, 19, 22, 46, 0, 0, time.UTC)
	if err := s.StartIndexing(ctx, v.ID, 377, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Progress(ctx, v.ID, 100); err != nil {
		t.Fatal(err)
	}
	got, err := s.Video(ctx, "acme", v.ID)
	if err != nil || got.Status != store.StatusIndexing || got.FramesDone != 100 || got.FramesTotal != 377 || !got.RecordedAt.Equal(rec) {
		t.Fatalf("indexing: %+v %v", got, err)
	}
	if err := s.Finish(ctx, v.ID, errors.New("decode: truncated")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Video(ctx, "acme", v.ID); got.Status != store.StatusFailed || got.Error != "decode: truncated" {
		t.Fatalf("failed: %+v", got)
	}
	// The same content again reuses the row, queued afresh.
	again, err := s.QueueUpload(ctx, "acme", "/y/a-copy.mp4", "a-copy.mp4", "sum1")
	if err != nil || again.ID != v.ID || again.Status != store.StatusQueued || again.Error != "" {
		t.Fatalf("requeue: %+v %v", again, err)
	}
	if err := s.Finish(ctx, v.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Video(ctx, "acme", v.ID); got.Status != store.StatusReady {
		t.Fatalf("ready: %+v", got)
	}
	// Another tenant neither sees the row nor shares it by content.
	if _, err := s.Video(ctx, "other", v.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other tenant read: %v", err)
	}
	if o, err := s.QueueUpload(ctx, "other", "/z.mp4", "z.mp4", "sum1"); err != nil || o.ID == v.ID {
		t.Errorf("other tenant, same content: %+v %v", o, err)
	}
	list, err := s.Videos(ctx, "acme")
	if err != nil || len(list) != 1 {
		t.Errorf("list: %d videos, %v", len(list), err)
	}
}

func TestPruneMoments(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	v, _ := s.QueueUpload(ctx, "acme", "/a.mp4", "a.mp4", "")
	batch := []pipeline.Moment{moment(v.ID, "acme", 1, "x"), moment(v.ID, "acme", 2, "y"), moment(v.ID, "acme", 3, "z")}
	if _, err := s.WriteMoments(ctx, batch); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneMoments(ctx, v.ID, ids(batch[:2]))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if left, _ := s.CountMoments(ctx, ids(batch), nil); left != 2 {
		t.Errorf("%d moments left, want 2", left)
	}
	searchMirrors(t, s, 2)
}
