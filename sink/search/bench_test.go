package search_test

// This file owns BenchmarkSearch1M: a deployment-sized table of synthetic moments, the latency of
// every kind of query through the real Searcher, and the recall of the HNSW index against exact
// nearest neighbours, all from one run.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"

	"github.com/vigilcam/vigil/pipeline"
	"github.com/vigilcam/vigil/sink/search"
	"github.com/vigilcam/vigil/sink/store"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

// benchSeed fixes the data, the word vectors and the queries, so that runs compare.
const benchSeed = 20260501

const (
	benchDims    = 384
	benchDays    = 90
	benchQueries = 200
	benchWarmup  = 20
	// Targets of DESIGN.md §8.
	targetP95    = 20 * time.Millisecond
	targetRecall = 0.95
)

// BenchmarkSearch1M loads VIGIL_BENCH_SEARCH_ROWS synthetic moments (make bench-search: 1,000,000)
// into a fresh database, builds the HNSW index as a bulk load would, and reports p50/p95/p99 of
// full-text, vector, hybrid and filtered hybrid queries through search.Searcher, and recall@10 of
// the HNSW plan against exact nearest neighbours. Queries have vigil's shipped deadline (500ms):
// one that misses it fails, and is counted as timed out. Targets (DESIGN.md §8): hybrid p95 ≤ 20 ms
// at 1M moments with filters, recall@10 ≥ 0.95. Run it with make bench-search.
func BenchmarkSearch1M(b *testing.B) {
	n, err := strconv.Atoi(os.Getenv("VIGIL_BENCH_SEARCH_ROWS"))
	if err != nil || n < 1 {
		b.Skip("set VIGIL_BENCH_SEARCH_ROWS to the moments to load (make bench-search loads 1000000; 50000 tries it out)")
	}
	ctx := context.Background()
	// VIGIL_BENCH_SEARCH_DB keeps the moments between runs, for trying out plans: the first run
	// loads them there, later ones (within a day, as the times are relative to the load) reuse them.
	dbURL := os.Getenv("VIGIL_BENCH_SEARCH_DB")
	if dbURL == "" {
		dbURL = storetest.URL(b)
	} else if err := store.Migrate(ctx, dbURL); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, dbURL, 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	pool := st.Pool()

	now := time.Now()
	emb := newWordEmbedder()
	g := &synth{r: rand.New(rand.NewPCG(benchSeed, 1)), emb: emb, epoch: now.Add(-(benchDays*24 + 1) * time.Hour)}
	var loaded int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM video_events").Scan(&loaded); err != nil {
		b.Fatal(err)
	}
	switch loaded {
	case 0:
		// Inserting into an HNSW index row by row is 200–400× slower than building it once
		// (DESIGN.md §4), so the index goes before the load and comes back after it, as a
		// backfill would do. Its definition is read back so that it stays the one of the
		// migrations.
		var indexDef string
		if err := pool.QueryRow(ctx, "SELECT indexdef FROM pg_indexes WHERE indexname = 'video_events_embedding'").Scan(&indexDef); err != nil {
			b.Fatalf("the migrations' HNSW index: %v", err)
		}
		if _, err := pool.Exec(ctx, "DROP INDEX video_events_embedding"); err != nil {
			b.Fatal(err)
		}
		g.addSources(b, st)
		g.load(b, pool, n)
		buildIndex(b, dbURL, indexDef)
	case n:
		b.Logf("reusing the %d moments in VIGIL_BENCH_SEARCH_DB", n)
		g.readSources(b, pool)
	default:
		b.Fatalf("the database holds %d moments, not %d: give a fresh one", loaded, n)
	}
	sizes(b, pool)
	warm(b, pool)

	qr := rand.New(rand.NewPCG(benchSeed, 2))
	texts, paraphrased := queries(qr)
	b.Logf("queries such as %q; paraphrases such as %q", texts[benchWarmup:benchWarmup+4], paraphrased[benchWarmup:benchWarmup+4])
	// As configs/vigil.yml ships it: the default deadline, and these weights.
	cfg := search.Config{RecencyWeight: 0.2, PriorityWeight: 0.2}
	hybrid := search.New(pool, emb, cfg, quiet)
	cams := g.cameras("acme")
	modes := []struct {
		name, metric string
		s            *search.Searcher
		texts        []string
		params       string // filters, as URL parameters; %s is a camera
	}{
		{"text-only", "text_only", search.New(pool, nil, cfg, quiet), texts, ""},
		{"vector-only", "vector_only", hybrid, paraphrased, ""},
		{"hybrid", "hybrid", hybrid, texts, ""},
		{"hybrid, one camera, last=7d", "hybrid_camera_7d", hybrid, texts, "camera=%s&last=7d"},
		{"hybrid, kind=live, last=30d", "hybrid_live_30d", hybrid, texts, "kind=live&last=30d"},
	}
	var targets []string
	fast := true
	for _, m := range modes {
		r := runMode(b, m.s, m.texts, func() string {
			if strings.Contains(m.params, "%s") {
				return fmt.Sprintf(m.params, url.QueryEscape(cams[qr.IntN(len(cams))]))
			}
			return m.params
		}, now)
		if m.name == "vector-only" && r.textMatched > 0 {
			b.Fatalf("vector-only: full text matched %d results; a paraphrase shares a word with the captions", r.textMatched)
		}
		b.Logf("%-28s p50 %s  p95 %s  p99 %s  (%d queries, %d timed out; plans %v; vector path dropped %d; slowest %s)",
			m.name, r.show(0.5), r.show(0.95), r.show(0.99), len(r.lat)+r.timedOut, r.timedOut, r.plans, r.degraded, strings.Join(r.slowest, ", "))
		p95 := math.Inf(1) // beyond the deadline
		if d, ok := r.pct(0.95); ok {
			p95 = ms(d)
		}
		b.ReportMetric(p95, m.metric+"_p95_ms")
		if strings.HasPrefix(m.name, "hybrid") {
			targets = append(targets, m.name+" "+r.show(0.95))
			fast = fast && p95 <= ms(targetP95)
		}
	}

	from := now.Add(-30 * 24 * time.Hour)
	vecs, err := emb.Embed(ctx, texts[benchWarmup:])
	if err != nil {
		b.Fatal(err)
	}
	recallAll, idAll := recall(b, pool, vecs, "unfiltered", "")
	recallBroad, idBroad := recall(b, pool, vecs, "kind=live, last=30d", "AND v.kind = 'camera' AND e.ended_at >= $3", from)
	b.ReportMetric(recallAll, "recall@10")
	b.ReportMetric(recallBroad, "recall@10_live_30d")

	b.Logf("%d moments: p95 %s (target ≤ %v: %s); recall@10 at ef_search %d %.3f, kind=live %.3f (target ≥ %.2f: %s; by id %.3f and %.3f)",
		n, strings.Join(targets, "; "), targetP95, met(fast), defaultEF, recallAll, recallBroad, targetRecall,
		met(min(recallAll, recallBroad) >= targetRecall), idAll, idBroad)
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// buildIndex creates the HNSW index over the loaded table with the memory and workers a bulk
// build needs, on a connection of its own so that pgvector's notices (a graph that no longer fits
// in maintenance_work_mem builds far slower) are shown.
func buildIndex(b *testing.B, dbURL, def string) {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { b.Logf("build: %s", n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, set := range []string{"SET maintenance_work_mem = '4GB'", "SET max_parallel_maintenance_workers = 2"} {
		if _, err := conn.Exec(ctx, set); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, def); err != nil {
		b.Fatalf("build the HNSW index: %v", err)
	}
	took := time.Since(start)
	b.Logf("HNSW index built in %v (maintenance_work_mem 4GB, max_parallel_maintenance_workers 2): %s", took.Round(time.Second), def)
	b.ReportMetric(took.Seconds(), "hnsw_build_s")
}

// warm reads the tables and indexes into PostgreSQL's shared buffers, where a server that has
// been answering queries holds them. A fresh load leaves them there; a database kept with
// VIGIL_BENCH_SEARCH_DB across a restart of PostgreSQL does not, and its first queries copied in
// every page they touched (vector-only p95 185 ms against 19).
func warm(b *testing.B, pool *pgxpool.Pool) {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_prewarm"); err != nil {
		b.Logf("not warming the shared buffers (pg_prewarm: %v): the first queries read pages in", err)
		return
	}
	start := time.Now()
	var pages int64
	if err := pool.QueryRow(ctx, `SELECT sum(pg_prewarm(c.oid)) FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i')`).Scan(&pages); err != nil {
		b.Fatalf("warm the shared buffers: %v", err)
	}
	b.Logf("warmed the shared buffers with the tables and indexes (%d MB) in %v", pages*8/1024, time.Since(start).Round(time.Second))
}

// sizes reports what the table and its search indexes take on disk.
func sizes(b *testing.B, pool *pgxpool.Pool) {
	var table, hnsw, words, gin string
	if err := pool.QueryRow(context.Background(), `SELECT pg_size_pretty(pg_table_size('video_events')),
		pg_size_pretty(pg_relation_size('video_events_embedding')), pg_size_pretty(pg_table_size('moment_search')),
		pg_size_pretty(pg_relation_size('moment_search_search'))`).
		Scan(&table, &hnsw, &words, &gin); err != nil {
		b.Fatal(err)
	}
	b.Logf("sizes: video_events %s, HNSW index %s, moment_search %s, its full-text GIN index %s", table, hnsw, words, gin)
}

// runMode times texts[benchWarmup:] through s after texts[:benchWarmup] as a warm-up, each query
// with the filters filters() returns (URL parameters, as the API takes them).
func runMode(b *testing.B, s *search.Searcher, texts []string, filters func() string, now time.Time) modeRun {
	ctx := context.Background()
	r := modeRun{plans: map[string]int{}}
	type timed struct {
		d      time.Duration
		params string
	}
	var all []timed
	for i, text := range texts {
		v, err := url.ParseQuery(filters())
		if err != nil {
			b.Fatal(err)
		}
		v.Set("q", text)
		v.Set("explain", "true")
		q, err := search.ParseQuery("acme", v, now)
		if err != nil {
			b.Fatalf("%s: %v", v.Encode(), err)
		}
		start := time.Now()
		resp, err := s.Search(ctx, q)
		d := time.Since(start)
		late := errors.Is(err, context.DeadlineExceeded)
		if err != nil && !late {
			b.Fatalf("%s: %v", v.Encode(), err)
		}
		dropped := slices.Contains(resp.Degraded, "vector")
		if i < benchWarmup {
			continue
		}
		all = append(all, timed{d, v.Encode()})
		if late {
			r.timedOut++
			continue
		}
		r.lat = append(r.lat, d)
		r.plans[cmp.Or(resp.Plan, "none")]++
		if dropped {
			r.degraded++
		}
		for _, res := range resp.Results {
			if res.Explain.TextRank != nil {
				r.textMatched++
			}
		}
	}
	slices.Sort(r.lat)
	slices.SortFunc(all, func(a, b timed) int { return cmp.Compare(b.d, a.d) })
	for _, t := range all[:min(3, len(all))] {
		r.slowest = append(r.slowest, fmt.Sprintf("%s %.0f ms", t.params, ms(t.d)))
	}
	return r
}

// modeRun is what one mode's queries took and said.
type modeRun struct {
	lat         []time.Duration // of the queries answered, sorted
	timedOut    int             // queries that failed at the deadline
	plans       map[string]int  // by Response.Plan; none when no vector path ran
	degraded    int             // answers without the vector path, which failed or ran out of time
	textMatched int             // results the full-text path found
	slowest     []string        // the three slowest queries' parameters and times
}

// pct returns the p-quantile of the latencies (nearest rank), or false where it falls among the
// queries that timed out.
func (r modeRun) pct(p float64) (time.Duration, bool) {
	i := max(0, int(math.Ceil(p*float64(len(r.lat)+r.timedOut)))-1)
	if i >= len(r.lat) {
		return 0, false
	}
	return r.lat[i], true
}

// show returns the p-quantile as text.
func (r modeRun) show(p float64) string {
	d, ok := r.pct(p)
	if !ok {
		return "timed out"
	}
	return fmt.Sprintf("%.1f ms", ms(d))
}

// efSearches are the HNSW candidate list sizes recall is measured at; vigil's default is
// defaultEF.
var efSearches = []int{100, 200, defaultEF, 800}

// defaultEF is search.Config's default EFSearch.
const defaultEF = 400

// recall returns recall@10 of the HNSW index (at defaultEF) against an exact scan, over acme's
// moments that pass cond (which may use $3 on, from args), for each of vecs, and reports it at
// each of efSearches. It counts as ann-benchmarks does: an answer no farther than the exact 10th
// nearest plus 0.001 is a neighbour found. Many moments share a caption, and so an embedding, so
// the exact ten are a pick among ties; byID, the share of those very moments found, is reported
// beside it. It shows once the plan the HNSW run got, since a planner that went another way
// would make the figures meaningless.
func recall(b *testing.B, pool *pgxpool.Pool, vecs [][]float32, name, cond string, args ...any) (byDistance, byID float64) {
	ctx := context.Background()
	query := `SELECT e.event_id, e.embedding <=> $2 FROM video_events e JOIN videos v ON v.video_id = e.video_id
		WHERE e.tenant = $1 AND e.embedding IS NOT NULL ` + cond + `
		ORDER BY e.embedding <=> $2 LIMIT 10`
	// As the Searcher plans: for each query's values, never a cached generic plan.
	exact := []string{"SET LOCAL plan_cache_mode = force_custom_plan", "SET LOCAL enable_indexscan = off"}
	hnsw := func(ef int) []string {
		return []string{"SET LOCAL plan_cache_mode = force_custom_plan", fmt.Sprintf("SET LOCAL hnsw.ef_search = %d", ef),
			"SET LOCAL hnsw.iterative_scan = relaxed_order"}
	}
	type tally struct {
		found, near int
		lat         []time.Duration
	}
	tallies := make([]tally, len(efSearches))
	var want int
	var exactLat []time.Duration
	for i, vec := range vecs {
		params := append([]any{"acme", pgvector.NewVector(vec)}, args...)
		if i == 0 {
			plan, err := inTx(ctx, pool, hnsw(defaultEF), "EXPLAIN (COSTS OFF) "+query, params, pgx.RowTo[string])
			if err != nil {
				b.Fatal(err)
			}
			var scans []string
			for _, line := range plan {
				if strings.Contains(line, "Scan") {
					scans = append(scans, strings.TrimLeft(line, " ->"))
				}
			}
			b.Logf("HNSW plan, %s: %s", name, strings.Join(scans, "; "))
		}
		start := time.Now()
		truth, err := inTx(ctx, pool, exact, query, params, pgx.RowToStructByPos[neighbour])
		if err != nil {
			b.Fatal(err)
		}
		exactLat = append(exactLat, time.Since(start))
		if len(truth) == 0 {
			continue
		}
		want += len(truth)
		for j, ef := range efSearches {
			start := time.Now()
			got, err := inTx(ctx, pool, hnsw(ef), query, params, pgx.RowToStructByPos[neighbour])
			if err != nil {
				b.Fatal(err)
			}
			t := &tallies[j]
			t.lat = append(t.lat, time.Since(start))
			for _, nb := range got {
				if slices.ContainsFunc(truth, func(t neighbour) bool { return t.ID == nb.ID }) {
					t.found++
				}
				if nb.Dist <= truth[len(truth)-1].Dist+1e-3 {
					t.near++
				}
			}
		}
	}
	var parts []string
	for j, t := range tallies {
		slices.Sort(t.lat)
		parts = append(parts, fmt.Sprintf("ef_search %d: %.3f (by id %.3f), p50 %.1f ms", efSearches[j],
			float64(t.near)/float64(max(want, 1)), float64(t.found)/float64(max(want, 1)), ms(t.lat[len(t.lat)/2])))
	}
	slices.Sort(exactLat)
	b.Logf("recall@10, %s, over %d queries against an exact scan (p50 %.1f ms), relaxed_order: %s",
		name, len(vecs), ms(exactLat[len(exactLat)/2]), strings.Join(parts, "; "))
	t := tallies[slices.Index(efSearches, defaultEF)]
	return float64(t.near) / float64(max(want, 1)), float64(t.found) / float64(max(want, 1))
}

// neighbour is a moment found near a query vector: its event_id and cosine distance.
type neighbour struct {
	ID   int64
	Dist float64
}

// inTx runs query with settings (SET LOCAL) in a transaction of its own and returns its rows.
func inTx[T any](ctx context.Context, pool *pgxpool.Pool, settings []string, query string, args []any, row pgx.RowToFunc[T]) ([]T, error) {
	var out []T
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range settings {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, row)
		return err
	})
	return out, err
}

// synth makes the benchmark's moments, the same ones for the same seed: two tenants, one with
// most of them; cameras that each look at one place and differ in how busy they are; a few
// uploaded files; more activity by day than by night; captions phrased the way a captioner
// phrases them, a few phrasings often and many rarely.
type synth struct {
	r   *rand.Rand
	emb *wordEmbedder
	// epoch is when the moments begin; they span benchDays from it, up to an hour before now.
	epoch time.Time
	srcs  []benchSource
	cum   []float64 // cumulative share of moments over srcs
}

// benchSource is a camera or an uploaded file.
type benchSource struct {
	id     int64
	tenant string
	name   string
	place  place         // where a camera looks; zero for a file
	shot   time.Duration // a file: when it was recorded, from the epoch
}

// addSources registers the tenants' cameras through the store, as the API would, and their
// uploads, and decides each one's share of the moments.
func (g *synth) addSources(b *testing.B, st *store.Store) {
	ctx := context.Background()
	var weights []float64
	for _, t := range []struct {
		name             string
		cameras, uploads int
		share            float64
	}{{"acme", 180, 20, 0.9}, {"globex", 20, 4, 0.1}} {
		first := len(g.srcs)
		used := map[string]int{}
		for range t.cameras {
			p := places.pick(g.r)
			used[p.cam]++
			name := fmt.Sprintf("%s-%d", p.cam, used[p.cam])
			spec := store.CameraSpec{Name: name, Enabled: true,
				URL: fmt.Sprintf("rtsp://10.%d.%d.%d/stream1", len(g.srcs)/250, len(g.srcs)%250, 10+g.r.IntN(200))}
			// Entrances matter more to a security team: their moments are lifted in ranking.
			if p.cam == "main-entrance" || p.cam == "front-gate" {
				spec.Priority = 0.5
			}
			c, err := st.AddCamera(ctx, t.name, spec)
			if err != nil {
				b.Fatal(err)
			}
			g.srcs = append(g.srcs, benchSource{id: c.ID, tenant: t.name, name: name, place: p})
			// Some cameras see far more than others (lognormal).
			weights = append(weights, math.Exp(0.8*g.r.NormFloat64()))
		}
		var camTotal float64
		for _, w := range weights[first:] {
			camTotal += w
		}
		for i := range weights[first:] {
			weights[first+i] *= 0.98 * t.share / camTotal
		}
		for i := range t.uploads {
			name := fmt.Sprintf("incident-%03d.mp4", i+1)
			v, err := st.QueueUpload(ctx, t.name, "/var/lib/vigil/uploads/"+name, name, "")
			if err == nil {
				err = st.Finish(ctx, v.ID, nil)
			}
			if err != nil {
				b.Fatal(err)
			}
			shot := time.Duration(g.r.Float64() * float64((benchDays*24-2)*time.Hour))
			g.srcs = append(g.srcs, benchSource{id: v.ID, tenant: t.name, name: name, shot: shot})
			weights = append(weights, 0.02*t.share/float64(t.uploads))
		}
	}
	g.cum = cumulative(weights)
}

// readSources reads back the sources of an earlier run, for cameras.
func (g *synth) readSources(b *testing.B, pool *pgxpool.Pool) {
	rows, err := pool.Query(context.Background(), `SELECT video_id, tenant, name, kind = 'camera' FROM videos ORDER BY video_id`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s benchSource
		var camera bool
		if err := rows.Scan(&s.id, &s.tenant, &s.name, &camera); err != nil {
			b.Fatal(err)
		}
		if camera {
			s.place.cam = s.name
		}
		g.srcs = append(g.srcs, s)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
}

// cameras returns the names of the tenant's cameras.
func (g *synth) cameras(tenant string) []string {
	var out []string
	for _, s := range g.srcs {
		if s.tenant == tenant && s.place.cam != "" {
			out = append(out, s.name)
		}
	}
	return out
}

var momentColumns = []string{"video_id", "timestamp", "end_s", "started_at", "ended_at", "tenant", "moment_uid",
	"caption", "yolo_metadata", "embedding", "best_score", "models", "revision"}

// load copies n moments into video_events in batches, then vacuums and analyzes the table.
func (g *synth) load(b *testing.B, pool *pgxpool.Pool, n int) {
	ctx := context.Background()
	const batch = 25000
	start := time.Now()
	all := make([][]any, n)
	for i := range all {
		all[i] = g.moment(i)
	}
	// In the order they happened, as the sink writes them: the table's pages then follow time,
	// as they do in a deployment, and the newest moments sit together.
	started := slices.Index(momentColumns, "started_at")
	slices.SortStableFunc(all, func(a, b []any) int { return a[started].(time.Time).Compare(b[started].(time.Time)) })
	gen := time.Since(start)
	start = time.Now()
	for done := 0; done < n; done += batch {
		rows := all[done:min(n, done+batch)]
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"video_events"}, momentColumns, pgx.CopyFromRows(rows)); err != nil {
			b.Fatalf("copy moments %d to %d: %v", done, done+len(rows), err)
		}
	}
	copying := time.Since(start)
	b.Logf("loaded %d moments in time order with COPY (batches of %d, full-text GIN and btree indexes in place, no HNSW) in %v: %.0f rows/s; making them took %v more",
		n, batch, copying.Round(time.Second), float64(n)/copying.Seconds(), gen.Round(time.Second))
	b.ReportMetric(float64(n)/copying.Seconds(), "load_rows/s")
	// VACUUM as well as ANALYZE: it empties the GIN index's pending list, which the load filled,
	// and spares the queries an autovacuum of the whole table in the middle of the measurement.
	start = time.Now()
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) video_events, moment_search"); err != nil {
		b.Fatal(err)
	}
	vacuum := time.Since(start)
	var captions, cams int
	if err := pool.QueryRow(ctx, "SELECT count(DISTINCT caption), count(DISTINCT video_id) FROM video_events").Scan(&captions, &cams); err != nil {
		b.Fatal(err)
	}
	b.Logf("VACUUM ANALYZE took %v; %d sources, %d different captions", vacuum.Round(time.Second), cams, captions)
	rows, err := pool.Query(ctx, "SELECT caption || ' ' || yolo_metadata::text FROM video_events ORDER BY event_id LIMIT 4")
	if err != nil {
		b.Fatal(err)
	}
	examples, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("moments such as %q", examples)
}

// moment returns the i-th moment as a row of momentColumns.
func (g *synth) moment(i int) []any {
	r := g.r
	src := g.srcs[draw(r, g.cum)]
	length := time.Duration(math.Min(60, math.Max(1, math.Exp(math.Log(8)+0.8*r.NormFloat64()))) * float64(time.Second))
	var at time.Duration // from the epoch
	var offset float64   // seconds from the source's start
	p := src.place
	if p.cam != "" {
		// A day, and an hour of the day by how busy that hour is; cameras run from the epoch.
		at = time.Duration(r.IntN(benchDays))*24*time.Hour + time.Duration(draw(r, hourCum))*time.Hour +
			time.Duration(r.IntN(3600))*time.Second
		offset = at.Seconds()
		// Cameras mostly see their own place; people and cars pass from elsewhere too.
		if r.Float64() < 0.2 {
			p = places.pick(r)
		}
	} else {
		offset = r.Float64() * 7200
		at = src.shot + time.Duration(offset*float64(time.Second))
		p = places.pick(r)
	}
	start := g.epoch.Add(at)
	// The hour of the day counts from the epoch, not the clock, so that every run has the same
	// captions.
	text, objects := caption(r, int(at/time.Hour)%24, p)
	return []any{src.id, offset, offset + length.Seconds(), start, start.Add(length), src.tenant,
		pipeline.MomentID(start, binary.BigEndian.AppendUint64(nil, uint64(i)), 0),
		text, objects, pgvector.NewVector(g.emb.embed(text, r)), float32(0.5 + 0.45*r.Float64()), benchModels, 2}
}

var benchModels = map[string]string{"detector": "yolov8n", "captioner": "florence-2-base", "embedder": "all-MiniLM-L6-v2"}

// hourCum is the cumulative share of moments by hour of the day: quiet at night, busy by day.
var hourCum = cumulative([]float64{2, 1, 1, 1, 1, 2, 4, 7, 9, 9, 8, 8, 9, 9, 8, 8, 9, 10, 9, 7, 5, 4, 3, 2})

// cumulative returns the running sums of weights, for draw.
func cumulative(weights []float64) []float64 {
	cum := make([]float64, len(weights))
	var sum float64
	for i, w := range weights {
		sum += w
		cum[i] = sum
	}
	return cum
}

// draw returns an index into the weights cum was made of, with chances in proportion to them.
func draw(r *rand.Rand, cum []float64) int {
	return min(len(cum)-1, sort.SearchFloat64s(cum, r.Float64()*cum[len(cum)-1]))
}

// phrases are ways of saying one part of a caption, the first ones most often: the i-th with
// weight 1/(i+1).
type phrases[T any] struct {
	items []T
	cum   []float64
}

func zipf[T any](items ...T) phrases[T] {
	w := make([]float64, len(items))
	for i := range w {
		w[i] = 1 / float64(i+1)
	}
	return phrases[T]{items: items, cum: cumulative(w)}
}

func (p phrases[T]) pick(r *rand.Rand) T { return p.items[draw(r, p.cum)] }

// phrase is part of a caption with the COCO class it shows, if any.
type phrase struct{ text, class string }

// person is how a captioner names the people of a moment; count 0 is a group of 3 to 6.
type person struct {
	text  string
	count int
}

// vehicle is a kind of vehicle in the singular and plural, with the class the detector gives it.
type vehicle struct{ one, many, class string }

// place is where a moment happens and the stem of the names of cameras that look at it there.
type place struct {
	text, cam string
	parked    bool // cars stand around in the background
}

var (
	people = zipf(person{"a man", 1}, person{"a person", 1}, person{"a woman", 1}, person{"two people", 2},
		person{"two men", 2}, person{"a delivery driver", 1}, person{"a group of people", 0}, person{"a security guard", 1},
		person{"a child", 1}, person{"a worker", 1}, person{"an elderly man", 1}, person{"a teenager", 1},
		person{"a jogger", 1}, person{"a woman and a child", 2}, person{"three men", 3}, person{"a couple", 2},
		person{"a cleaner", 1}, person{"a postman", 1})
	colors  = zipf("black", "red", "white", "blue", "grey", "dark", "green", "yellow", "orange", "brown", "pink", "purple")
	clothes = zipf("jacket", "hoodie", "coat", "shirt", "cap", "hat", "vest", "raincoat", "uniform", "sweater",
		"dress", "tracksuit", "helmet", "scarf")
	doing = zipf(phrase{"walking", ""}, phrase{"standing", ""}, phrase{"running", ""}, phrase{"loitering", ""},
		phrase{"talking on a phone", ""}, phrase{"carrying a box", ""}, phrase{"carrying a backpack", "backpack"},
		phrase{"waiting", ""}, phrase{"smoking", ""}, phrase{"looking around", ""}, phrase{"walking a dog", "dog"},
		phrase{"pushing a trolley", ""}, phrase{"pulling a suitcase", "suitcase"}, phrase{"riding a bicycle", "bicycle"},
		phrase{"walking a bicycle", "bicycle"}, phrase{"delivering a package", ""}, phrase{"opening the door", ""},
		phrase{"unloading boxes", ""}, phrase{"looking into cars", ""}, phrase{"trying the door handle", ""},
		phrase{"climbing over the fence", ""}, phrase{"sitting on the steps", ""}, phrase{"taking photos", ""},
		phrase{"holding an umbrella", "umbrella"}, phrase{"carrying a handbag", "handbag"}, phrase{"sweeping the floor", ""})
	besides = zipf(phrase{"while a car drives past", "car"}, phrase{"as a van pulls in", "truck"},
		phrase{"with a dog", "dog"}, phrase{"next to a parked motorcycle", "motorcycle"})
	vehicles = zipf(vehicle{"car", "cars", "car"}, vehicle{"van", "vans", "truck"}, vehicle{"pickup truck", "pickup trucks", "truck"},
		vehicle{"truck", "trucks", "truck"}, vehicle{"suv", "suvs", "car"}, vehicle{"sedan", "sedans", "car"},
		vehicle{"motorcycle", "motorcycles", "motorcycle"}, vehicle{"taxi", "taxis", "car"}, vehicle{"bus", "buses", "bus"},
		vehicle{"box truck", "box trucks", "truck"}, vehicle{"scooter", "scooters", "motorcycle"})
	paints  = zipf("white", "black", "silver", "grey", "red", "blue", "dark", "green", "yellow")
	driving = zipf("parked", "driving slowly", "pulling in", "leaving", "reversing", "idling", "stopping briefly",
		"turning around", "driving past", "waiting with headlights on", "unloading", "double parked")
	animals = zipf(phrase{"a dog", "dog"}, phrase{"a cat", "cat"}, phrase{"a fox", "dog"}, phrase{"a bird", "bird"},
		phrase{"two dogs", "dog"})
	roaming = zipf("running", "walking", "sniffing around", "sitting", "crossing", "wandering")
	places  = zipf(place{"in the parking lot", "parking-lot", true}, place{"at the front gate", "front-gate", false},
		place{"at the main entrance", "main-entrance", false}, place{"near the loading dock", "loading-dock", true},
		place{"on the sidewalk", "sidewalk", false}, place{"in the driveway", "driveway", true},
		place{"in the lobby", "lobby", false}, place{"along the fence", "fence", false},
		place{"across the street", "street", true}, place{"near the garage", "garage", true},
		place{"at the side door", "side-door", false}, place{"behind the warehouse", "warehouse-rear", true},
		place{"in the corridor", "corridor", false}, place{"at the reception desk", "reception", false},
		place{"by the bike rack", "bike-rack", false}, place{"in the stairwell", "stairwell", false},
		place{"near the dumpsters", "yard", true}, place{"at the checkpoint", "checkpoint", true},
		place{"by the vending machines", "canteen", false}, place{"on the loading ramp", "ramp", true})
)

// caption returns a caption of something happening at p at the given hour, and the objects the
// detector would have counted (the most of each class at once).
func caption(r *rand.Rand, hour int, p place) (string, map[string]int) {
	objects := map[string]int{}
	var b strings.Builder
	switch x := r.Float64(); {
	case x < 0.62:
		who := people.pick(r)
		objects["person"] = cmp.Or(who.count, 3+r.IntN(4))
		b.WriteString(who.text)
		if r.Float64() < 0.55 {
			c := colors.pick(r)
			fmt.Fprintf(&b, " in %s %s %s", article(c), c, clothes.pick(r))
		}
		what := doing.pick(r)
		b.WriteString(" " + what.text)
		if what.class != "" {
			objects[what.class]++
		}
		if r.Float64() < 0.1 {
			also := besides.pick(r)
			b.WriteString(" " + also.text)
			objects[also.class]++
		}
		if r.Float64() < 0.12 {
			objects["backpack"]++
		}
	case x < 0.92:
		v := vehicles.pick(r)
		n := 1 + draw(r, []float64{75, 93, 100})
		noun := v.one
		if n > 1 {
			noun = v.many
		}
		if r.Float64() < 0.6 {
			noun = paints.pick(r) + " " + noun
		}
		fmt.Fprintf(&b, "%s %s %s", []string{article(noun), "two", "three"}[n-1], noun, driving.pick(r))
		objects[v.class] += n
		if r.Float64() < 0.3 {
			objects["person"]++ // the driver, seen getting in or out
		}
	default:
		a := animals.pick(r)
		fmt.Fprintf(&b, "%s %s", a.text, roaming.pick(r))
		objects[a.class] = 1 + strings.Count(a.text, "two")
	}
	b.WriteString(" " + p.text)
	if w := weather(r, hour); w != "" {
		b.WriteString(" " + w)
	}
	if p.parked && r.Float64() < 0.5 {
		objects["car"] += 1 + r.IntN(4)
	}
	return b.String(), objects
}

// weather is what a captioner adds about the light and the weather at the given hour, often nothing.
func weather(r *rand.Rand, hour int) string {
	switch x := r.Float64(); {
	case x < 0.06:
		return "in the rain"
	case x < 0.08:
		return "in heavy snow"
	case x < 0.1:
		return "in fog"
	case (hour < 6 || hour >= 21) && x < 0.7:
		return "at night"
	case hour >= 6 && hour < 10 && x < 0.35:
		return "in the morning"
	case hour >= 17 && hour < 21 && x < 0.35:
		return "at dusk"
	}
	return ""
}

func article(word string) string {
	if strings.ContainsRune("aeio", rune(word[0])) {
		return "an"
	}
	return "a"
}

// queries returns benchWarmup+benchQueries plain-language queries of 1 to 5 words, as people
// type them, taken from captions made the same way as the moments'; and as many paraphrases,
// whose words no caption uses but which embed next to caption words, so that only the vector
// path can answer them.
func queries(r *rand.Rand) (texts, paraphrased []string) {
	window := func(words []string) string {
		k := min(len(words), 1+r.IntN(5))
		i := r.IntN(len(words) - k + 1)
		return strings.Join(words[i:i+k], " ")
	}
	for len(texts) < benchWarmup+benchQueries || len(paraphrased) < benchWarmup+benchQueries {
		text, _ := caption(r, r.IntN(24), places.pick(r))
		words := contentWords(text)
		if len(texts) < benchWarmup+benchQueries {
			texts = append(texts, window(words))
		}
		var para []string
		for _, w := range words {
			if p, ok := paraphraseOf[w]; ok {
				para = append(para, p)
			}
		}
		if len(para) > 0 && len(paraphrased) < benchWarmup+benchQueries {
			paraphrased = append(paraphrased, window(para))
		}
	}
	return texts, paraphrased
}

// contentWords are a text's lower-case words without the small words a sentence embedding
// gives little weight to.
func contentWords(text string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if !stopWords[w] {
			out = append(out, w)
		}
	}
	return out
}

var stopWords = map[string]bool{"a": true, "an": true, "the": true, "in": true, "on": true, "at": true, "of": true,
	"and": true, "with": true, "by": true, "to": true, "into": true, "as": true, "while": true, "over": true}

// paraphrases maps words no caption uses (none in the synonym list, nor stemming to a caption
// word or a camera's name) to the caption word they mean.
var paraphrases = map[string]string{
	"gentleman": "man", "lady": "woman", "individual": "person", "youngster": "child", "folks": "people",
	"motorcar": "car", "minivan": "van", "hauler": "truck", "pushbike": "bicycle", "canine": "dog", "feline": "cat",
	"knapsack": "backpack", "valise": "suitcase", "crimson": "red", "azure": "blue", "ebony": "black",
	"ivory": "white", "slate": "grey", "emerald": "green", "amber": "yellow", "parka": "jacket",
	"sweatshirt": "hoodie", "overcoat": "coat", "beanie": "hat", "strolling": "walking", "sprinting": "running",
	"lingering": "loitering", "lugging": "carrying", "offloading": "unloading", "departing": "leaving",
	"entryway": "entrance", "carpark": "lot", "railing": "fence", "pavement": "sidewalk", "forecourt": "driveway",
	"foyer": "lobby", "depot": "warehouse", "nighttime": "night", "downpour": "rain", "twilight": "dusk",
	"daybreak": "morning", "doorway": "door", "barrier": "gate", "courier": "delivery", "stationary": "parked",
}

// paraphraseOf is paraphrases the other way round.
var paraphraseOf = func() map[string]string {
	m := map[string]string{}
	for p, w := range paraphrases {
		m[w] = p
	}
	return m
}()

// wordEmbedder stands in for all-MiniLM-L6-v2, whose weights are not on these machines: a text's
// embedding is the normalised sum of a fixed random unit vector for each of its content words, so
// that captions sharing words are near, as their sentence embeddings are; a paraphrase's vector
// lies next to its word's. Moments' embeddings get a little noise on top (the rest of what a
// real caption says); a query's are exact, so the same text always embeds the same.
type wordEmbedder struct {
	mu    sync.Mutex
	words map[string][]float64
}

func newWordEmbedder() *wordEmbedder { return &wordEmbedder{words: map[string][]float64{}} }

// Embed embeds queries for the Searcher.
func (e *wordEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = e.embed(t, nil)
	}
	return out, nil
}

// embed returns text's embedding, with noise from r unless r is nil.
func (e *wordEmbedder) embed(text string, r *rand.Rand) []float32 {
	sum := make([]float64, benchDims)
	for _, w := range contentWords(text) {
		for i, x := range e.word(w) {
			sum[i] += x
		}
	}
	if r != nil {
		for i := range sum {
			sum[i] += 0.6 / math.Sqrt(benchDims) * r.NormFloat64()
		}
	}
	return normalized[float32](sum)
}

// word returns w's unit vector: random, from a generator seeded with w, or for a paraphrase
// its word's nudged a little.
func (e *wordEmbedder) word(w string) []float64 {
	e.mu.Lock()
	v, ok := e.words[w]
	e.mu.Unlock()
	if ok {
		return v
	}
	h := fnv.New64a()
	h.Write([]byte(w))
	r := rand.New(rand.NewPCG(benchSeed, h.Sum64()))
	v = make([]float64, benchDims)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	v = normalized[float64](v)
	if base, ok := paraphrases[w]; ok {
		near := e.word(base)
		for i := range v {
			v[i] = near[i] + 0.3*v[i]
		}
		v = normalized[float64](v)
	}
	e.mu.Lock()
	e.words[w] = v
	e.mu.Unlock()
	return v
}

func normalized[T float32 | float64](v []float64) []T {
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x / norm)
	}
	return out
}
