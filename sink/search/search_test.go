package search_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/pipeline/embed"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
	"github.com/vigilcam/vigil/sink/search"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

var quiet = slog.New(slog.DiscardHandler)

// tinyEmbedder is the generated MiniLM stand-in of pipeline/embed/testdata: its vectors mean
// nothing, but the same text always embeds the same, so a query that repeats a caption finds
// that moment nearest.
func tinyEmbedder(t *testing.T) *embed.Embedder {
	t.Helper()
	onnxtest.Init(t)
	dir := filepath.Join("..", "..", "pipeline", "embed", "testdata")
	e, err := embed.New(embed.Config{Model: filepath.Join(dir, "tiny_model.onnx"), Tokenizer: filepath.Join(dir, "tokenizer.json")}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// corpus is a small fixed set of moments over two cameras and a file, plus one of another tenant.
type corpus struct {
	st    *store.Store
	ids   map[string]string // by a short name
	gate  int64
	lot   int64
	other string // the other tenant's moment
}

func newCorpus(t *testing.T, emb *embed.Embedder) *corpus {
	t.Helper()
	ctx := context.Background()
	c := &corpus{st: storetest.Open(t), ids: map[string]string{}}
	gate, err := c.st.AddCamera(ctx, "acme", store.CameraSpec{Name: "gate", URL: "rtsp://10.0.0.1/gate", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	lot, err := c.st.AddCamera(ctx, "acme", store.CameraSpec{Name: "lot", URL: "rtsp://10.0.0.2/lot", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	file, err := c.st.QueueUpload(ctx, "acme", "/uploads/delivery.mp4", "delivery.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := c.st.QueueUpload(ctx, "rival", "/uploads/x.mp4", "x.mp4", "")
	if err != nil {
		t.Fatal(err)
	}
	c.gate, c.lot = gate.ID, lot.ID
	now := time.Now()
	add := func(name, tenant string, video int64, ago, length time.Duration, objects map[string]int, caption string) {
		start := now.Add(-ago)
		m := pipeline.Moment{ID: pipeline.MomentID(start, []byte(name), 0), Tenant: tenant, VideoID: video,
			StartS: 100, EndS: 100 + length.Seconds(), StartedAt: start, EndedAt: start.Add(length),
			Objects: objects, Caption: caption, Models: map[string]string{}}
		if emb != nil {
			vecs, err := emb.Embed(ctx, []string{caption})
			if err != nil {
				t.Fatal(err)
			}
			m.Embedding = vecs[0]
		}
		if _, err := c.st.WriteMoments(ctx, []pipeline.Moment{m}); err != nil {
			t.Fatal(err)
		}
		c.ids[name] = m.ID
	}
	add("bike", "acme", gate.ID, time.Hour, 12*time.Second, map[string]int{"person": 1, "bicycle": 1}, "A man walking a bicycle near the gate.")
	add("sedans", "acme", lot.ID, 2*time.Hour, 30*time.Second, map[string]int{"car": 2}, "Two sedans parked in the lot.")
	add("lorry", "acme", file.ID, 30*24*time.Hour, 5*time.Second, map[string]int{"truck": 1, "person": 1}, "A lorry unloading boxes at the dock.")
	add("crowd", "acme", gate.ID, 10*time.Minute, 8*time.Second, map[string]int{"person": 3}, "Three pedestrians crossing the road.")
	add("dog", "acme", lot.ID, 3*24*time.Hour, 6*time.Second, map[string]int{"dog": 1}, "A dog running across the grass <script>.")
	add("rival", "rival", elsewhere.ID, time.Hour, 12*time.Second, map[string]int{"person": 1, "bicycle": 1}, "A man walking a bicycle near the gate.")
	c.other = c.ids["rival"]
	// With statistics, the full-text path first looks through the newest moments for common words.
	if _, err := c.st.Pool().Exec(ctx, "ANALYZE moment_search"); err != nil {
		t.Fatal(err)
	}
	return c
}

// find runs a query given as URL parameters and returns the result names in order.
func (c *corpus) find(t *testing.T, s *search.Searcher, params string) ([]string, search.Response) {
	t.Helper()
	v, err := url.ParseQuery(params)
	if err != nil {
		t.Fatal(err)
	}
	q, err := search.ParseQuery("acme", v, time.Now())
	if err != nil {
		t.Fatalf("%s: %v", params, err)
	}
	resp, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", params, err)
	}
	return c.names(resp), resp
}

func (c *corpus) names(resp search.Response) []string {
	var out []string
	for _, r := range resp.Results {
		name := "?"
		for n, id := range c.ids {
			if id == r.MomentID {
				name = n
			}
		}
		out = append(out, name)
	}
	return out
}

func TestTextRanking(t *testing.T) {
	c := newCorpus(t, nil)
	s := search.New(c.st.Pool(), nil, search.Config{}, quiet)
	for _, tc := range []struct {
		params string
		want   []string // in any order unless ordered
		first  string
	}{
		{params: "q=vehicle", want: []string{"sedans"}},                    // synonym of car
		{params: "q=lorry", want: []string{"lorry"}},                       // synonym of the truck label
		{params: "q=guy", want: []string{"bike", "crowd", "lorry"}},        // synonym of person
		{params: "q=walks", want: []string{"bike"}},                        // stemming: walking
		{params: "q=gate", want: []string{"bike", "crowd"}, first: "bike"}, // camera name; caption too
		{params: "q=bicycles+near+the+gate", want: []string{"bike", "crowd"}, first: "bike"},
		{params: "q=the", want: nil}, // only stop words
		{params: "q=helicopter", want: nil},
	} {
		got, resp := c.find(t, s, tc.params)
		if !sameSet(got, tc.want) || tc.first != "" && (len(got) == 0 || got[0] != tc.first) {
			t.Errorf("%s: %v, want %v (first %q)", tc.params, got, tc.want, tc.first)
		}
		if !slices.Equal(resp.Degraded, []string{"embedder"}) {
			t.Errorf("%s: degraded %v, want [embedder]: no embedder was given", tc.params, resp.Degraded)
		}
	}
	_, resp := c.find(t, s, "q=walking+bicycle")
	if len(resp.Results) == 0 || !strings.Contains(resp.Results[0].Snippet, "<mark>walking</mark>") {
		t.Errorf("snippet %+v, want walking marked", resp.Results)
	}
	_, resp = c.find(t, s, "q=dog")
	if len(resp.Results) != 1 || !strings.Contains(resp.Results[0].Snippet, "&lt;script&gt;") || resp.Results[0].ThumbnailURL == "" {
		t.Errorf("dog: %+v, want the caption's markup escaped in the snippet and a thumbnail URL", resp.Results)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestFiltersAndSelectivePlans(t *testing.T) {
	emb := tinyEmbedder(t)
	c := newCorpus(t, emb)
	s := search.New(c.st.Pool(), emb, search.Config{}, quiet)
	for _, tc := range []struct {
		params string
		want   []string
	}{
		{"q=person&camera=gate", []string{"bike", "crowd"}},
		{"q=person&camera=" + itoa(c.lot), nil},
		{"q=person&last=90m", []string{"bike", "crowd"}},
		{"q=person&objects=person:2", []string{"crowd"}},
		{"q=person+car&min_duration=10s", []string{"bike", "sedans"}},
		{"q=person&kind=upload", []string{"lorry"}},
		{"q=person&kind=live&to=" + url.QueryEscape(time.Now().Add(-30*time.Minute).Format(time.RFC3339)), []string{"bike"}},
	} {
		got, resp := c.find(t, s, tc.params+"&explain=true&top_k=100")
		// The vector path ranks every moment with an embedding; the filters must hold for it too.
		var textOnly []string
		for i, r := range resp.Results {
			if r.Explain.TextRank != nil {
				textOnly = append(textOnly, got[i])
			}
		}
		if !sameSet(textOnly, tc.want) {
			t.Errorf("%s: full-text matches %v, want %v", tc.params, textOnly, tc.want)
		}
		for i, r := range resp.Results {
			if !c.passes(tc.params, got[i]) {
				t.Errorf("%s: %s (%+v) does not pass the filter", tc.params, got[i], r)
			}
		}
		if resp.Plan != "exact" || len(resp.Degraded) != 0 {
			t.Errorf("%s: plan %q degraded %v, want the exact plan for a filter this selective", tc.params, resp.Plan, resp.Degraded)
		}
	}
	if _, resp := c.find(t, s, "q=person&explain=true"); resp.Plan != "hnsw" {
		t.Errorf("unfiltered plan %q, want hnsw", resp.Plan)
	}
	q, _ := search.ParseQuery("acme", url.Values{"q": {"x"}, "camera": {"nowhere"}}, time.Now())
	if _, err := s.Search(context.Background(), q); !errors.Is(err, search.ErrInvalid) || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("unknown camera: %v", err)
	}
}

// passes says whether the corpus moment name meets the filters in params, from what newCorpus
// gave it.
func (c *corpus) passes(params, name string) bool {
	v, _ := url.ParseQuery(params)
	camera := map[string]string{"bike": "gate", "crowd": "gate", "sedans": "lot", "dog": "lot", "lorry": "delivery.mp4"}[name]
	ago := map[string]time.Duration{"bike": time.Hour, "sedans": 2 * time.Hour, "lorry": 720 * time.Hour, "crowd": 10 * time.Minute, "dog": 72 * time.Hour}[name]
	persons := map[string]int{"bike": 1, "lorry": 1, "crowd": 3}[name]
	length := map[string]int{"bike": 12, "sedans": 30, "lorry": 5, "crowd": 8, "dog": 6}[name]
	switch {
	case v.Get("camera") == "gate" && camera != "gate", v.Get("camera") == itoa(c.lot) && camera != "lot":
		return false
	case v.Get("last") == "90m" && ago > 90*time.Minute:
		return false
	case v.Get("objects") == "person:2" && persons < 2:
		return false
	case v.Get("min_duration") == "10s" && length < 10:
		return false
	case v.Get("kind") == "upload" && camera != "delivery.mp4", v.Get("kind") == "live" && camera == "delivery.mp4":
		return false
	case v.Get("to") != "" && ago < 30*time.Minute:
		return false
	}
	return true
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestFusionBoostsAndPins: a moment both paths find outranks one found by full text alone; of two
// equal moments the newer and the one of the higher-priority camera come first; pinned moments
// lead in their order, within the filters.
func TestFusionBoostsAndPins(t *testing.T) {
	emb := tinyEmbedder(t)
	c := newCorpus(t, emb)
	ctx := context.Background()
	s := search.New(c.st.Pool(), emb, search.Config{RecencyWeight: 0.2, PriorityWeight: 0.2}, quiet)

	// The query repeats the sedans' caption: nearest for the vector path and a full-text match;
	// the dog moment matches "lot" only by its camera's name.
	got, resp := c.find(t, s, "q=Two+sedans+parked+in+the+lot.&explain=true")
	if len(got) < 2 || got[0] != "sedans" {
		t.Fatalf("fusion: %v", got)
	}
	top := resp.Results[0].Explain
	if top.TextPosition == nil || *top.TextPosition != 1 || top.VectorPosition == nil || *top.VectorPosition != 1 ||
		*top.VectorDistance > 1e-6 {
		t.Errorf("sedans explained %+v, want first of both paths at distance 0", top)
	}
	rrf := 1/(60+1.0) + 1/(60+1.0)
	if d := top.RRF - rrf; d*d > 1e-12 {
		t.Errorf("rrf %v, want %v", top.RRF, rrf)
	}
	if want := top.RRF * (1 + top.RecencyBoost + top.PriorityBoost); resp.Results[0].Score != want {
		t.Errorf("score %v, want rrf × (1 + boosts) = %v", resp.Results[0].Score, want)
	}
	for i, r := range resp.Results {
		if got[i] == "dog" && !r.Explain.SourceMatched {
			t.Errorf("dog moment found without its camera's name matching: %+v", r.Explain)
		}
	}

	// Recency: the newer a moment, the more it is lifted.
	_, resp = c.find(t, s, "q=person&explain=true&top_k=100")
	boost := map[string]float64{}
	for i, n := range c.names(resp) {
		boost[n] = resp.Results[i].Explain.RecencyBoost
	}
	if !(boost["crowd"] > boost["bike"] && boost["bike"] > boost["lorry"]) {
		t.Errorf("recency boosts %v, want newer moments lifted more", boost)
	}

	// Priority: lifting the lot camera puts its moment ahead for a query both cameras match.
	one := 1.0
	if _, err := c.st.UpdateCamera(ctx, "acme", c.lot, store.CameraPatch{Priority: &one}); err != nil {
		t.Fatal(err)
	}
	_, resp = c.find(t, s, "q=dog&explain=true")
	if len(resp.Results) == 0 || resp.Results[0].Explain.PriorityBoost != 0.2 {
		t.Errorf("dog on the priority camera: %+v, want a priority boost of 0.2", resp.Results)
	}

	// Pins: the lorry pinned to "dog" comes first, then the dog; outside the filters it is not shown.
	if err := s.SetPins(ctx, "acme", "  Dog ", []string{c.ids["lorry"]}); err != nil {
		t.Fatal(err)
	}
	got, resp = c.find(t, s, "q=dog")
	if len(got) < 2 || got[0] != "lorry" || !resp.Results[0].Pinned || got[1] != "dog" {
		t.Errorf("pinned: %v %+v", got, resp.Results)
	}
	if got, _ := c.find(t, s, "q=dog&kind=live"); slices.Contains(got, "lorry") {
		t.Errorf("pinned moment shown outside the query's filters: %v", got)
	}
	if err := s.SetPins(ctx, "acme", "dog", []string{c.other}); !errors.Is(err, search.ErrInvalid) {
		t.Errorf("pinning another tenant's moment: %v", err)
	}
	pins, err := s.Pins(ctx, "acme")
	if err != nil || !slices.Equal(pins["dog"], []string{c.ids["lorry"]}) {
		t.Errorf("pins %v %v", pins, err)
	}
}

func TestTenantIsolation(t *testing.T) {
	emb := tinyEmbedder(t)
	c := newCorpus(t, emb)
	s := search.New(c.st.Pool(), emb, search.Config{}, quiet)
	// The rival tenant's moment has the same caption as acme's bike moment.
	got, resp := c.find(t, s, "q=A+man+walking+a+bicycle+near+the+gate.&top_k=100")
	for _, r := range resp.Results {
		if r.MomentID == c.other {
			t.Errorf("acme's search returned the rival tenant's moment: %v", got)
		}
	}
	q, _ := search.ParseQuery("acme", url.Values{"q": {"bicycle"}}, time.Now())
	if _, err := s.Why(context.Background(), q, c.other); !errors.Is(err, search.ErrNotFound) {
		t.Errorf("why about another tenant's moment: %v, want ErrNotFound", err)
	}
}

func TestWhy(t *testing.T) {
	// Full text alone: with an embedder, the vector path ranks every moment somewhere.
	c := newCorpus(t, nil)
	s := search.New(c.st.Pool(), nil, search.Config{}, quiet)
	why := func(params, name string) search.Why {
		t.Helper()
		v, _ := url.ParseQuery(params)
		q, err := search.ParseQuery("acme", v, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Why(context.Background(), q, c.ids[name])
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, tc := range []struct {
		params, name, reason string
		returned             bool
	}{
		{"q=bicycle", "bike", "returned at rank 1", true},
		{"q=person&camera=lot", "bike", `filtered out by camera: it is from "gate"`, false},
		{"q=person&objects=person:2", "bike", "filtered out by objects: it has 1 person at most at once, the query wants 2", false},
		{"q=person&kind=upload", "crowd", "filtered out by kind", false},
		{"q=person&min_duration=20s", "bike", "filtered out by duration: it lasted 12s", false},
		{"q=person&last=30m", "bike", "filtered out by time", false},
		{"q=helicopter", "dog", "no query word matched its caption or objects", false},
		{"q=the", "dog", "no words full text can search", false},
		{"q=person&top_k=1", "lorry", "ranked ", false},
	} {
		w := why(tc.params, tc.name)
		if w.Returned != tc.returned || !slices.ContainsFunc(w.Reasons, func(r string) bool { return strings.Contains(r, tc.reason) }) {
			t.Errorf("why %s for %s: %+v, want a reason containing %q", tc.name, tc.params, w, tc.reason)
		}
	}
}

// slow is an embedder that takes its time, as an overloaded or stuck model would.
type slow struct {
	search.Embedder
	delay time.Duration
}

func (s slow) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Embedder.Embed(ctx, texts)
}

// TestMatchesBeyondTheNewest buries the corpus under more moments than the full-text path looks
// through newest first: what only older moments match must still be found, through the index.
func TestMatchesBeyondTheNewest(t *testing.T) {
	c := newCorpus(t, nil)
	ctx := context.Background()
	now := time.Now()
	var filler []pipeline.Moment
	for i := range 10050 {
		start := now.Add(-time.Duration(i) * 50 * time.Millisecond)
		filler = append(filler, pipeline.Moment{ID: pipeline.MomentID(start, []byte(fmt.Sprint("cat", i)), 0), Tenant: "acme",
			VideoID: c.lot, StartS: 100, EndS: 105, StartedAt: start, EndedAt: start.Add(5 * time.Second),
			Objects: map[string]int{"cat": 1}, Caption: "A cat sitting on the wall.", Models: map[string]string{}})
	}
	if _, err := c.st.WriteMoments(ctx, filler); err != nil {
		t.Fatal(err)
	}
	// Older than the filler: with a word in nearly every moment (cat), which the full-text index
	// is then not asked for, and one in two (lorry).
	chase := now.Add(-48 * time.Hour)
	m := pipeline.Moment{ID: pipeline.MomentID(chase, []byte("chase"), 0), Tenant: "acme", VideoID: c.lot,
		StartS: 100, EndS: 105, StartedAt: chase, EndedAt: chase.Add(5 * time.Second),
		Objects: map[string]int{"cat": 1, "truck": 1}, Caption: "A cat chasing a lorry.", Models: map[string]string{}}
	if _, err := c.st.WriteMoments(ctx, []pipeline.Moment{m}); err != nil {
		t.Fatal(err)
	}
	c.ids["chase"] = m.ID
	if _, err := c.st.Pool().Exec(ctx, "ANALYZE moment_search"); err != nil {
		t.Fatal(err)
	}
	s := search.New(c.st.Pool(), nil, search.Config{}, quiet)
	for _, tc := range []struct {
		params string
		want   []string
	}{
		{"q=lorry", []string{"chase", "lorry"}},
		// The only moment with both words, then the newest with one of them: a cat of the filler.
		{"q=cat+lorry&top_k=2", []string{"chase", "?"}},
		{"q=walking+bicycle", []string{"bike"}},
		{"q=walking+bicycle&camera=gate", []string{"bike"}},
		{"q=lorry&camera=gate", nil},
	} {
		if got, _ := c.find(t, s, tc.params); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.params, got, tc.want)
		}
	}
	_, resp := c.find(t, s, "q=cat&top_k=3")
	var got []string
	for _, r := range resp.Results {
		got = append(got, r.MomentID)
	}
	if want := []string{filler[0].ID, filler[1].ID, filler[2].ID}; !slices.Equal(got, want) {
		t.Errorf("cat: %v, want the three newest moments %v", got, want)
	}
}

// TestDeadlineDegrades: when the vector path misses its share of a query's deadline, the results
// come from full text, marked degraded.
func TestDeadlineDegrades(t *testing.T) {
	emb := tinyEmbedder(t)
	c := newCorpus(t, emb)
	s := search.New(c.st.Pool(), slow{emb, 5 * time.Second}, search.Config{Timeout: 300 * time.Millisecond}, quiet)
	got, resp := c.find(t, s, "q=person")
	if !slices.Equal(resp.Degraded, []string{"vector"}) || !sameSet(got, []string{"bike", "crowd", "lorry"}) {
		t.Errorf("slow vector path: %v degraded %v, want the full-text results marked degraded [vector]", got, resp.Degraded)
	}
	fast := search.New(c.st.Pool(), slow{emb, 0}, search.Config{Timeout: 300 * time.Millisecond}, quiet)
	if _, resp := c.find(t, fast, "q=person"); len(resp.Degraded) != 0 {
		t.Errorf("fast vector path degraded %v", resp.Degraded)
	}
}

// TestTextFailureDegrades: when the full-text path fails (here its synonyms cannot be read), the
// results come from the vector path, marked degraded, and why-not-found still answers.
func TestTextFailureDegrades(t *testing.T) {
	emb := tinyEmbedder(t)
	c := newCorpus(t, emb)
	if _, err := c.st.Pool().Exec(context.Background(), "DROP TABLE search_synonyms"); err != nil {
		t.Fatal(err)
	}
	s := search.New(c.st.Pool(), emb, search.Config{}, quiet)
	got, resp := c.find(t, s, "q="+url.QueryEscape("Two sedans parked in the lot."))
	if !slices.Equal(resp.Degraded, []string{"text"}) || len(got) == 0 || got[0] != "sedans" {
		t.Errorf("failing full-text path: %v degraded %v, want the vector path's results, sedans first, marked degraded [text]", got, resp.Degraded)
	}
	q, _ := search.ParseQuery("acme", url.Values{"q": {"Two sedans parked in the lot."}}, time.Now())
	w, err := s.Why(context.Background(), q, c.ids["sedans"])
	if err != nil || !w.Returned || !slices.Equal(w.Degraded, []string{"text"}) {
		t.Errorf("why, failing full-text path: %+v, %v; want returned, degraded [text]", w, err)
	}
}

func TestCursorPages(t *testing.T) {
	emb := tinyEmbedder(t)
	c := newCorpus(t, emb)
	s := search.New(c.st.Pool(), emb, search.Config{}, quiet)
	_, all := c.find(t, s, "q=person&top_k=100")
	var paged []string
	cursor := ""
	for range 20 {
		_, resp := c.find(t, s, "q=person&top_k=2&cursor="+cursor)
		for _, r := range resp.Results {
			paged = append(paged, r.MomentID)
		}
		if cursor = resp.NextCursor; cursor == "" {
			break
		}
	}
	var want []string
	for _, r := range all.Results {
		want = append(want, r.MomentID)
	}
	if !slices.Equal(paged, want) {
		t.Errorf("pages of 2 gave %v, want %v", paged, want)
	}
	_, first := c.find(t, s, "q=person&top_k=1")
	v := url.Values{"q": {"car"}, "cursor": {first.NextCursor}}
	q, err := search.ParseQuery("acme", v, time.Now())
	if err == nil {
		_, err = s.Search(context.Background(), q)
	}
	if !errors.Is(err, search.ErrInvalid) {
		t.Errorf("a cursor of another query: %v, want ErrInvalid", err)
	}
}

func TestHostileQueries(t *testing.T) {
	c := newCorpus(t, nil)
	s := search.New(c.st.Pool(), nil, search.Config{}, quiet)
	for _, params := range []string{
		"q=" + strings.Repeat("a", 501),
		"q=",
		"q=%00",
		"q=car&top_k=1000",
		"q=car&top_k=x",
		"q=car&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
		"q=car&from=yesterday",
		"q=car&last=-5h",
		"q=car&last=5h&from=2026-01-01T00:00:00Z",
		"q=car&objects=person:-1",
		"q=car&objects=" + url.QueryEscape("person');drop table videos;--:1"),
		"q=car&kind=satellite",
		"q=car&cursor=garbage",
		"q=car&explain=maybe",
		"q=car&min_duration=forever",
	} {
		v, err := url.ParseQuery(params)
		if err != nil {
			t.Fatal(err)
		}
		q, err := search.ParseQuery("acme", v, time.Now())
		if err == nil {
			_, err = s.Search(context.Background(), q)
		}
		if !errors.Is(err, search.ErrInvalid) {
			t.Errorf("%.80s: %v, want ErrInvalid", params, err)
		}
	}
	// Syntax of SQL and of tsquery is only text to search.
	for _, text := range []string{"'; DROP TABLE videos; --", "car & | ! ( :* <-> \\", "監視カメラ 🚲", "Robert'); DELETE FROM video_events;--"} {
		if _, err := s.Search(context.Background(), search.Query{Tenant: "acme", Text: text}); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
	if got, _ := c.find(t, s, "q=car"); len(got) != 1 {
		t.Errorf("after hostile queries, car finds %v", got)
	}
}
