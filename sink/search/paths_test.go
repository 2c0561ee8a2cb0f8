package search

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

// TestRarestWordFirst: a query's words are searched rarest first, by the statistics of
// moment_search, whatever order the query gives them in; the moments found are those with every
// word, and only those when they fill the page.
func TestRarestWordFirst(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	yard, err := st.AddCamera(ctx, "acme", store.CameraSpec{Name: "yard", URL: "rtsp://10.0.0.1/yard", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var moments []pipeline.Moment
	var zebras []string
	for i := range 400 {
		caption := "A person walking across the yard."
		if i%40 == 0 {
			caption = "A person walking a zebra across the yard."
		}
		start := now.Add(-time.Duration(i) * time.Minute)
		m := pipeline.Moment{ID: pipeline.MomentID(start, []byte(fmt.Sprint(i)), 0), Tenant: "acme", VideoID: yard.ID,
			StartS: 100, EndS: 105, StartedAt: start, EndedAt: start.Add(5 * time.Second),
			Objects: map[string]int{"person": 1}, Caption: caption, Models: map[string]string{}}
		moments = append(moments, m)
		if strings.Contains(caption, "zebra") {
			zebras = append(zebras, m.ID)
		}
	}
	if _, err := st.WriteMoments(ctx, moments); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, "ANALYZE moment_search"); err != nil {
		t.Fatal(err)
	}
	s := New(st.Pool(), nil, Config{}, slog.New(slog.DiscardHandler))
	terms, err := s.expand(ctx, "acme", "person walking zebra")
	if err != nil {
		t.Fatal(err)
	}
	if len(terms.groups) != 3 || terms.groups[0] != "('zebra')" || !strings.HasPrefix(terms.all, "('zebra') & ") {
		t.Errorf("groups %q, all %q: want zebra, the rarest word, first", terms.groups, terms.all)
	}
	resp, err := s.Search(ctx, Query{Tenant: "acme", Text: "person walking zebra", TopK: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range resp.Results {
		got = append(got, r.MomentID)
	}
	slices.Sort(got)
	slices.Sort(zebras)
	if !slices.Equal(got, zebras) {
		t.Errorf("found %d moments, want the %d with a zebra", len(got), len(zebras))
	}
}

// TestSettingsLastOneQuery: collectWith's settings are in force for its query, and for nothing
// after it on the same connection: the pool has only the one.
func TestSettingsLastOneQuery(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, storetest.URL(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	s := New(st.Pool(), nil, Config{}, slog.New(slog.DiscardHandler))
	for range 3 {
		got, err := s.collectWith(ctx, []string{"work_mem", "7MB", "enable_seqscan", "off"},
			`SELECT current_setting('work_mem') || ' ' || current_setting('enable_seqscan'), 0::float8, false, now(), 0::real`)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].id != "7MB off" {
			t.Errorf("in force: %+v, want 7MB off", got)
		}
	}
	for range 3 {
		var mem string
		if err := st.Pool().QueryRow(ctx, "SELECT current_setting('work_mem')").Scan(&mem); err != nil {
			t.Fatal(err)
		}
		if mem == "7MB" {
			t.Fatal("work_mem 7MB outlived the query it was set for")
		}
	}
}

// TestEveryGroup: common words are checked, not looked up in the index, once the rarer ones are
// rare enough together.
func TestEveryGroup(t *testing.T) {
	for _, tc := range []struct {
		shares []float64
		want   string
	}{
		{[]float64{0.9}, "e.search @@ ($5::text[])[1]::tsquery"},
		{[]float64{0.04, 0.1, 0.9}, "e.search @@ ($5::text[])[1]::tsquery AND e.search @@ ($5::text[])[2]::tsquery AND e.search @@ ($5::text[])[3]::tsquery"},
		{[]float64{0.01, 0.1, 0.9, 1.2}, "e.search @@ ($5::text[])[1]::tsquery AND e.search @@ ($5::text[])[2]::tsquery AND " +
			"ts_match_vq(e.search, ($5::text[])[3]::tsquery) AND ts_match_vq(e.search, ($5::text[])[4]::tsquery)"},
		{[]float64{0, 0.7}, "e.search @@ ($5::text[])[1]::tsquery AND ts_match_vq(e.search, ($5::text[])[2]::tsquery)"},
	} {
		if got := everyGroup(tc.shares); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.shares, got, tc.want)
		}
	}
}
