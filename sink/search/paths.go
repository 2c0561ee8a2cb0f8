package search

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// terms are a query's words as English tsqueries: all asks for every word (each as itself or a
// synonym), any for at least one. Both are "" when the query has no searchable word (stop words
// only). Every word goes through plainto_tsquery, so no user text is parsed as tsquery syntax.
// Words with the same stem ("parked parking") count once.
type terms struct {
	all, any string
	words    []string // every word and synonym searched for, for explanations
	sources  []int64  // the tenant's cameras a word names
}

const termsSQL = `
	WITH a AS (SELECT DISTINCT g, t::text AS t
		FROM unnest($1::text[], $2::int[]) AS a(w, g), LATERAL plainto_tsquery('english', a.w) AS t
		WHERE t::text <> ''),
	groups AS (SELECT DISTINCT '(' || string_agg(t, ' | ' ORDER BY t) || ')' AS q FROM a GROUP BY g),
	q AS (SELECT coalesce(string_agg(q, ' & '), '') AS all_words, coalesce(string_agg(q, ' | '), '') AS any_word FROM groups)
	SELECT all_words, any_word, (SELECT coalesce(array_agg(v.video_id ORDER BY v.video_id), '{}') FROM videos v
		WHERE v.tenant = $3 AND v.kind = 'camera' AND any_word <> '' AND to_tsvector('english', v.name) @@ any_word::tsquery)
	FROM q`

// filter is a query's filters as SQL conditions on video_events e (or moment_search e, which has
// the same columns for them) joined with videos v.
type filter struct {
	conds []string
	args  []any
	// narrow is set when anything besides the tenant filters.
	narrow bool
}

// where returns " AND ..." with each $? numbered in turn from first.
func (f filter) where(first int) (string, []any) {
	var b strings.Builder
	for _, c := range f.conds {
		b.WriteString(" AND ")
		for {
			before, after, found := strings.Cut(c, "$?")
			b.WriteString(before)
			if !found {
				break
			}
			fmt.Fprintf(&b, "$%d", first)
			first++
			c = after
		}
	}
	return b.String(), f.args
}

// add appends a condition with one $? per argument.
func (f *filter) add(cond string, args ...any) {
	f.conds = append(f.conds, cond)
	f.args = append(f.args, args...)
	f.narrow = true
}

// resolve turns q's filters into SQL, looking its cameras up by name or id.
func (s *Searcher) resolve(ctx context.Context, q Query) (filter, error) {
	var f filter
	if len(q.Cameras) > 0 {
		var ids []int64
		var names []string
		rows, err := s.pool.Query(ctx, `SELECT video_id, name FROM videos
			WHERE tenant = $1 AND (name = ANY($2) OR video_id::text = ANY($2))`, q.Tenant, q.Cameras)
		if err != nil {
			return f, fmt.Errorf("search: %w", err)
		}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return f, fmt.Errorf("search: %w", err)
			}
			ids, names = append(ids, id), append(names, name)
		}
		if err := rows.Err(); err != nil {
			return f, fmt.Errorf("search: %w", err)
		}
		for _, c := range q.Cameras {
			if !slices.Contains(names, c) && !slices.ContainsFunc(ids, func(id int64) bool { return fmt.Sprint(id) == c }) {
				return f, fmt.Errorf("%w: no camera or file named %q", ErrInvalid, c)
			}
		}
		f.add("e.video_id = ANY($?::int[])", ids)
	}
	if !q.From.IsZero() {
		// The bound on started_at is implied (no moment lasts a day) and lets the btree of
		// camera and time narrow the range.
		f.add("e.ended_at >= $? AND e.started_at >= $?", q.From, q.From.Add(-24*time.Hour))
	}
	if !q.To.IsZero() {
		f.add("e.started_at < $?", q.To)
	}
	classes := make([]string, 0, len(q.Objects))
	for c := range q.Objects {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, c := range classes {
		f.add("coalesce((e.yolo_metadata->>$?)::int, 0) >= $?", c, q.Objects[c])
	}
	if q.MinDuration > 0 {
		f.add(`e.end_s - e."timestamp" >= $?`, q.MinDuration.Seconds())
	}
	if q.Kind != "" {
		f.add("v.kind = $?", map[string]string{"live": "camera", "upload": "upload"}[q.Kind])
	}
	return f, nil
}

// expand turns the query's words, each with its synonyms, into terms.
func (s *Searcher) expand(ctx context.Context, tenant, text string) (terms, error) {
	groups, err := s.Synonyms(ctx, tenant)
	if err != nil {
		return terms{}, err
	}
	var t terms
	var group []int
	for i, w := range words(text) {
		alts := []string{w}
		for _, g := range groups {
			if slices.Contains(g, w) || slices.Contains(g, strings.TrimSuffix(w, "s")) {
				alts = append(alts, g...)
			}
		}
		for _, a := range alts {
			t.words = append(t.words, a)
			group = append(group, i)
		}
	}
	if err := s.pool.QueryRow(ctx, termsSQL, t.words, group, tenant).Scan(&t.all, &t.any, &t.sources); err != nil {
		return terms{}, err
	}
	slices.Sort(t.words)
	t.words = slices.Compact(t.words)
	return t, nil
}

// rankScan bounds how many of the newest matching moments are ranked: ranking every moment with
// a common word costs seconds at a million moments, and of equal matches a security team wants
// the recent ones.
const rankScan = 300

// recentScan is how many of the newest moments passing the filters are looked through first
// (moment_search holds 30 to a page: about 3 ms).
const recentScan = 10000

// text ranks moments by full text over caption and object labels, and the names of the tenant's
// cameras, in moment_search. Moments matching every query word come first; only when fewer than
// need do, moments matching any word, or of a camera a word names, follow, ranked half as high.
func (s *Searcher) text(ctx context.Context, q Query, f filter, t terms, depth, need int) ([]candidate, error) {
	if t.all == "" {
		return nil, nil
	}
	every, err := s.newest(ctx, q, f, t, "e.search @@ $5::tsquery", t.all, 1, depth, need)
	if err != nil || len(every) >= need {
		return every, err
	}
	match := "e.search @@ $2::tsquery"
	if len(t.sources) > 0 {
		match = "(e.search @@ $2::tsquery OR e.video_id = ANY($3::int[]))"
	}
	some, err := s.newest(ctx, q, f, t, match+" AND NOT e.search @@ $5::tsquery", t.any, 0.5, depth-len(every), need-len(every))
	for i := range some {
		some[i].position += len(every)
	}
	return append(every, some...), err
}

// newest ranks the newest rankScan moments that match (SQL on moment_search e, with $2 the
// tsquery ranked by, weighted by weight, $3 the named cameras and $5 every word's tsquery) and
// pass f, and returns the best limit; enough is how many the caller cannot do without.
//
// The planner cannot be left to find them. Walking the time index back until enough match has no
// bound: it expected 3,645 moments to say "barrier", "gentleman" or "lug", none did, and it read
// all 900,000 (540 ms). Reading every match through the full-text index costs as many moments as
// match: it multiplies the words' shares as if they were independent, a caption's are not
// ("parking lot", "near the loading dock"), and expecting an eighth of the true matches it read
// all 62,000 of "near loading" (280 ms). So the recentScan newest moments are looked through
// first, which bounds the walk. Only when they hold fewer than enough matches is the full-text
// index read: its cost is that of the words' posting lists, not of the matches, and common words
// together ("man walking car drives": 8,000 matches among lists of 100,000s) cost 90 ms there
// against 3 ms for the newest moments. The list then holds the newest moments' matches rather
// than the best of the rankScan newest; ranking favours recent moments anyway.
func (s *Searcher) newest(ctx context.Context, q Query, f filter, t terms, match, ranked string, weight float64, limit, enough int) ([]candidate, error) {
	where, args := f.where(6)
	args = append([]any{q.Tenant, ranked, t.sources, weight, t.all}, args...)
	query := func(from string) string {
		return `SELECT m.moment_uid::text,
				ts_rank(m.search, $2::tsquery, 32) * $4::float8 + CASE WHEN m.cam THEN 0.1 ELSE 0 END AS rank, m.cam,
				m.started_at, coalesce(c.priority, 0)
			FROM (SELECT e.moment_uid, e.started_at, e.search, e.video_id, e.video_id = ANY($3::int[]) AS cam FROM ` + from + `
				ORDER BY e.started_at DESC LIMIT ` + fmt.Sprint(rankScan) + `) m
			LEFT JOIN cameras c ON c.video_id = m.video_id
			ORDER BY rank DESC, m.started_at DESC, m.moment_uid LIMIT ` + fmt.Sprint(limit)
	}
	rows, err := s.pool.Query(ctx, query(`(SELECT e.moment_uid, e.started_at, e.search, e.video_id
		FROM moment_search e JOIN videos v ON v.video_id = e.video_id WHERE e.tenant = $1`+where+`
		ORDER BY e.started_at DESC LIMIT `+fmt.Sprint(recentScan)+`) e WHERE `+match), args...)
	if err != nil {
		return nil, err
	}
	recent, err := collect(rows)
	if err != nil || len(recent) >= enough {
		return recent, err
	}
	// Where the filters leave fewer moments than recentScan, the newest were all of them. Counted
	// down the time index as they were read: without the order, the planner may read the table
	// from its oldest moments on to find the first recentScan of a time range (100 ms).
	narrowed, narrowArgs := f.where(2)
	var passing int
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM moment_search e JOIN videos v ON v.video_id = e.video_id
		WHERE e.tenant = $1`+narrowed+` ORDER BY e.started_at DESC LIMIT `+fmt.Sprint(recentScan)+`) w`,
		append([]any{q.Tenant}, narrowArgs...)...).Scan(&passing)
	if err != nil || passing < recentScan {
		return recent, err
	}
	// Bitmap scans only: the full-text index, not a walk of the time index.
	return s.collectWith(ctx, []string{"SET LOCAL enable_indexscan = off", "SET LOCAL enable_seqscan = off"},
		query("moment_search e JOIN videos v ON v.video_id = e.video_id WHERE e.tenant = $1 AND "+match+where), args...)
}

// collectWith runs query under settings (SET LOCAL, in a transaction of its own) and reads its
// candidates as collect does.
func (s *Searcher) collectWith(ctx context.Context, settings []string, query string, args ...any) ([]candidate, error) {
	var out []candidate
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, set := range settings {
			if _, err := tx.Exec(ctx, set); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = collect(rows)
		return err
	})
	return out, err
}

// vector ranks moments by the cosine distance of their caption's embedding to the query's. A
// selective filter is answered exactly: the btree narrows the moments, all of which are compared;
// otherwise the HNSW index answers, scanning on (iterative scan) until enough moments pass the
// filter. Plans are planned for each query's values, not reused from the statement cache:
// store.Open sets plan_cache_mode = force_custom_plan on every connection.
func (s *Searcher) vector(ctx context.Context, q Query, f filter, depth int) ([]candidate, string, error) {
	vecs, err := s.emb.Embed(ctx, []string{q.Text})
	if err != nil {
		return nil, "", fmt.Errorf("embed the query: %w", err)
	}
	plan := "hnsw"
	if f.narrow {
		// The planner's estimate of the moments the filter leaves: counting them could cost a
		// scan of the table.
		where, args := f.where(2)
		var explained []struct {
			Plan struct {
				Rows float64 `json:"Plan Rows"`
			}
		}
		if err := s.pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM video_events e
			JOIN videos v ON v.video_id = e.video_id
			WHERE e.tenant = $1 AND e.embedding IS NOT NULL`+where,
			append([]any{q.Tenant}, args...)...).Scan(&explained); err != nil {
			return nil, "", err
		}
		if len(explained) == 1 && explained[0].Plan.Rows <= float64(s.cfg.ExactBelow) {
			plan = "exact"
		}
	}
	// Bitmap scans of the btree stay allowed for the exact plan; only the HNSW index scan is
	// ruled out.
	settings := []string{"SET LOCAL enable_indexscan = off"}
	if plan == "hnsw" {
		settings = []string{fmt.Sprintf("SET LOCAL hnsw.ef_search = %d", min(1000, max(s.cfg.EFSearch, depth))),
			"SET LOCAL hnsw.iterative_scan = relaxed_order"}
	}
	where, args := f.where(4)
	out, err := s.collectWith(ctx, settings, `SELECT e.moment_uid::text, e.embedding <=> $2 AS d, false,
			e.started_at, coalesce(c.priority, 0)
		FROM video_events e JOIN videos v ON v.video_id = e.video_id LEFT JOIN cameras c ON c.video_id = e.video_id
		WHERE e.tenant = $1 AND e.embedding IS NOT NULL`+where+`
		ORDER BY e.embedding <=> $2 LIMIT $3`,
		append([]any{q.Tenant, pgvector.NewVector(vecs[0]), depth}, args...)...)
	if err != nil {
		return nil, plan, err
	}
	// relaxed_order may return neighbours slightly out of order.
	sort.SliceStable(out, func(i, j int) bool { return out[i].value < out[j].value })
	for i := range out {
		out[i].position = i + 1
	}
	return out, plan, nil
}

// pinned returns the moments pinned to q's text that pass its filters, in pin order.
func (s *Searcher) pinned(ctx context.Context, q Query, f filter) ([]candidate, error) {
	where, args := f.where(3)
	rows, err := s.pool.Query(ctx, `SELECT p.moment_uid::text, 0::float8, false, e.started_at, coalesce(c.priority, 0)
		FROM search_pins p
		JOIN video_events e ON e.moment_uid = p.moment_uid AND e.tenant = p.tenant
		JOIN videos v ON v.video_id = e.video_id LEFT JOIN cameras c ON c.video_id = e.video_id
		WHERE p.tenant = $1 AND p.query = $2`+where+`
		ORDER BY p.position`, append([]any{q.Tenant, normalize(q.Text)}, args...)...)
	if err != nil {
		return nil, err
	}
	return collect(rows)
}
