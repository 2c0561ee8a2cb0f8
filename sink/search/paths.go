package search

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// tsquerySQL ORs the query's words and their synonyms ($2, one per element) into one English
// tsquery, stemmed and without stop words; NULL when nothing is left. Each element goes through
// plainto_tsquery, so no user text is ever parsed as tsquery syntax.
const tsquerySQL = `SELECT string_agg('(' || t::text || ')', ' | ')::tsquery AS q
	FROM unnest($2::text[]) AS a(w), LATERAL plainto_tsquery('english', a.w) AS t
	WHERE t::text <> ''`

// filter is a query's filters as SQL conditions on video_events e joined with videos v.
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
		f.add("e.ended_at >= $?", q.From)
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

// expand returns the query's words with every synonym of each, for tsquerySQL.
func (s *Searcher) expand(ctx context.Context, tenant, text string) ([]string, error) {
	groups, err := s.Synonyms(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range words(text) {
		out = append(out, w)
		for _, g := range groups {
			if slices.Contains(g, w) || slices.Contains(g, strings.TrimSuffix(w, "s")) {
				out = append(out, g...)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// text ranks moments by full text: caption and object labels, and the names of the tenant's
// cameras (a moment of a camera the query names matches).
func (s *Searcher) text(ctx context.Context, q Query, f filter, alts []string, depth int) ([]candidate, error) {
	where, args := f.where(4)
	rows, err := s.pool.Query(ctx, `
		WITH q AS (`+tsquerySQL+`),
		src AS (SELECT coalesce(array_agg(v.video_id), '{}') AS ids FROM videos v, q
			WHERE v.tenant = $1 AND v.kind = 'camera' AND to_tsvector('english', v.name) @@ q.q)
		SELECT e.moment_uid::text,
			ts_rank_cd(e.search, q.q, 32) + CASE WHEN e.video_id = ANY(src.ids) THEN 0.1 ELSE 0 END AS rank,
			e.video_id = ANY(src.ids)
		FROM video_events e JOIN videos v ON v.video_id = e.video_id, q, src
		WHERE e.tenant = $1 AND q.q IS NOT NULL AND (e.search @@ q.q OR e.video_id = ANY(src.ids))`+where+`
		ORDER BY rank DESC, e.started_at DESC, e.moment_uid
		LIMIT $3`, append([]any{q.Tenant, alts, depth}, args...)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, true)
}

// vector ranks moments by the cosine distance of their caption's embedding to the query's. A
// selective filter is answered exactly: the btree narrows the moments, all of which are compared;
// otherwise the HNSW index answers, scanning on (iterative scan) until enough moments pass the
// filter. Plans are planned for each query's values (force_custom_plan), not reused from the
// statement cache.
func (s *Searcher) vector(ctx context.Context, q Query, f filter, depth int) ([]candidate, string, error) {
	vecs, err := s.emb.Embed(ctx, []string{q.Text})
	if err != nil {
		return nil, "", fmt.Errorf("embed the query: %w", err)
	}
	where, args := f.where(3)
	plan := "hnsw"
	if f.narrow {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM video_events e
			JOIN videos v ON v.video_id = e.video_id
			WHERE e.tenant = $1 AND e.embedding IS NOT NULL`+where+` LIMIT $2) s`,
			append([]any{q.Tenant, s.cfg.ExactBelow + 1}, args...)...).Scan(&n); err != nil {
			return nil, "", err
		}
		if n <= s.cfg.ExactBelow {
			plan = "exact"
		}
	}
	var out []candidate
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		settings := []string{"SET LOCAL plan_cache_mode = force_custom_plan"}
		if plan == "exact" {
			// Bitmap scans of the btree stay allowed; only the HNSW index scan is ruled out.
			settings = append(settings, "SET LOCAL enable_indexscan = off")
		} else {
			settings = append(settings, fmt.Sprintf("SET LOCAL hnsw.ef_search = %d", min(1000, max(s.cfg.EFSearch, depth))),
				"SET LOCAL hnsw.iterative_scan = relaxed_order")
		}
		for _, set := range settings {
			if _, err := tx.Exec(ctx, set); err != nil {
				return err
			}
		}
		where, args := f.where(4)
		rows, err := tx.Query(ctx, `SELECT e.moment_uid::text, e.embedding <=> $2 AS d
			FROM video_events e JOIN videos v ON v.video_id = e.video_id
			WHERE e.tenant = $1 AND e.embedding IS NOT NULL`+where+`
			ORDER BY e.embedding <=> $2 LIMIT $3`,
			append([]any{q.Tenant, pgvector.NewVector(vecs[0]), depth}, args...)...)
		if err != nil {
			return err
		}
		out, err = collect(rows, false)
		return err
	})
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
func (s *Searcher) pinned(ctx context.Context, q Query, f filter) ([]string, error) {
	where, args := f.where(3)
	rows, err := s.pool.Query(ctx, `SELECT p.moment_uid::text FROM search_pins p
		JOIN video_events e ON e.moment_uid = p.moment_uid AND e.tenant = p.tenant
		JOIN videos v ON v.video_id = e.video_id
		WHERE p.tenant = $1 AND p.query = $2`+where+`
		ORDER BY p.position`, append([]any{q.Tenant, normalize(q.Text)}, args...)...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
