package search

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// terms are a query's words as English tsqueries: groups holds one per word (the word or a
// synonym), the rarest first, and shares the part of moments each is in, by the statistics (0
// when they do not list it); all asks for every group, any for at least one. All are empty when
// the query has no searchable word (stop words only). Every word goes through plainto_tsquery, so
// no user text is parsed as tsquery syntax. Words with the same stem ("parked parking") count once.
type terms struct {
	groups   []string
	shares   []float64
	all, any string
	words    []string // every word and synonym searched for, for explanations
	sources  []int64  // the tenant's cameras a word names
}

// termsSQL returns each group of words as a tsquery with its lexemes, and the tenant's cameras
// any group names (the same on every row).
const termsSQL = `
	WITH a AS (SELECT DISTINCT g, t::text AS t, l
		FROM unnest($1::text[], $2::int[]) AS a(w, g), LATERAL plainto_tsquery('english', a.w) AS t,
			unnest(tsvector_to_array(to_tsvector('english', a.w))) AS l
		WHERE t::text <> ''),
	groups AS (SELECT DISTINCT '(' || string_agg(DISTINCT t, ' | ' ORDER BY t) || ')' AS q, array_agg(DISTINCT l ORDER BY l) AS lexemes
		FROM a GROUP BY g),
	cams AS (SELECT coalesce(array_agg(v.video_id ORDER BY v.video_id), '{}') AS ids
		FROM videos v, (SELECT string_agg(q, ' | ') AS any_word FROM groups) w
		WHERE v.tenant = $3 AND v.kind = 'camera' AND to_tsvector('english', v.name) @@ w.any_word::tsquery)
	SELECT g.q, g.lexemes, cams.ids FROM groups g, cams`

// filter is a query's filters as SQL conditions on video_events e, or moment_search e, which has
// the same columns for them.
type filter []cond

// cond is one condition with one $? per argument; indexed conditions are ones the btrees of time
// and camera answer alone.
type cond struct {
	sql     string
	args    []any
	indexed bool
}

// where returns " AND ..." with each $? numbered in turn from first.
func (f filter) where(first int) (string, []any) {
	var b strings.Builder
	var args []any
	for _, c := range f {
		sql := c.sql
		b.WriteString(" AND ")
		for {
			before, after, found := strings.Cut(sql, "$?")
			b.WriteString(before)
			if !found {
				break
			}
			fmt.Fprintf(&b, "$%d", first)
			first++
			sql = after
		}
		args = append(args, c.args...)
	}
	return b.String(), args
}

// add appends a condition.
func (f *filter) add(indexed bool, sql string, args ...any) {
	*f = append(*f, cond{sql, args, indexed})
}

// narrow reports whether anything besides the tenant filters.
func (f filter) narrow() bool { return len(f) > 0 }

// coarse returns the indexed conditions alone: they keep every moment the filter keeps, and
// more, and counting them reads the btree only.
func (f filter) coarse() filter {
	var c filter
	for _, cond := range f {
		if cond.indexed {
			c = append(c, cond)
		}
	}
	return c
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
		f.add(true, "e.video_id = ANY($?::int[])", ids)
	}
	if !q.From.IsZero() {
		f.add(false, "e.ended_at >= $?", q.From)
		// Implied (no moment lasts a day), and it lets the btree of camera and time narrow the range.
		f.add(true, "e.started_at >= $?", q.From.Add(-24*time.Hour))
	}
	if !q.To.IsZero() {
		f.add(true, "e.started_at < $?", q.To)
	}
	classes := make([]string, 0, len(q.Objects))
	for c := range q.Objects {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, c := range classes {
		f.add(false, "coalesce((e.yolo_metadata->>$?)::int, 0) >= $?", c, q.Objects[c])
	}
	if q.MinDuration > 0 {
		f.add(false, `e.end_s - e."timestamp" >= $?`, q.MinDuration.Seconds())
	}
	if q.Kind != "" {
		// As the tenant's sources of that kind, so that no path joins videos for every moment
		// it reads; PostgreSQL hashes a long list.
		var ids []int64
		if err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(video_id), '{}') FROM videos WHERE tenant = $1 AND kind = $2`,
			q.Tenant, map[string]string{"live": "camera", "upload": "upload"}[q.Kind]).Scan(&ids); err != nil {
			return f, fmt.Errorf("search: %w", err)
		}
		f.add(false, "e.video_id = ANY($?::int[])", ids)
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
	shares := s.lexemeShares(ctx)
	rows, err := s.pool.Query(ctx, termsSQL, t.words, group, tenant)
	if err != nil {
		return terms{}, err
	}
	share := map[string]float64{}
	for rows.Next() {
		var q string
		var lexemes []string
		if err := rows.Scan(&q, &lexemes, &t.sources); err != nil {
			rows.Close()
			return terms{}, err
		}
		t.groups = append(t.groups, q)
		for _, l := range lexemes {
			share[q] += shares[l]
		}
	}
	if err := rows.Err(); err != nil {
		return terms{}, err
	}
	// Rarest first: PostgreSQL tests the conditions in turn, and the full-text index skips along
	// the first one's moments, so it reads that word's list and not the common words' ones.
	slices.SortFunc(t.groups, func(a, b string) int { return cmp.Or(cmp.Compare(share[a], share[b]), strings.Compare(a, b)) })
	for _, g := range t.groups {
		t.shares = append(t.shares, share[g])
	}
	t.all, t.any = strings.Join(t.groups, " & "), strings.Join(t.groups, " | ")
	slices.Sort(t.words)
	t.words = slices.Compact(t.words)
	return t, nil
}

// sharesTTL is how long the lexemes' shares are kept: they change when autovacuum analyzes
// moment_search, after a tenth of it has changed.
const sharesTTL = 10 * time.Minute

// lexemeShares returns the share of moments each common lexeme is in, from PostgreSQL's
// statistics of moment_search; a lexeme it does not list is rarer than those it does. They only
// order a query's words, so a failure to read them is logged and the last ones kept. A nil map
// (none read yet) reads as all zero.
func (s *Searcher) lexemeShares(ctx context.Context) map[string]float64 {
	s.sharesMu.Lock()
	defer s.sharesMu.Unlock()
	if time.Since(s.sharesAt) < sharesTTL {
		return s.shares
	}
	rows, err := s.pool.Query(ctx, `SELECT u.lexeme, u.share FROM pg_stats s,
			unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(lexeme, share)
		WHERE s.schemaname = current_schema() AND s.tablename = 'moment_search' AND s.attname = 'search'
			AND u.lexeme IS NOT NULL`)
	type lexemeShare struct {
		Lexeme string
		Share  float64
	}
	var stats []lexemeShare
	if err == nil {
		stats, err = pgx.CollectRows(rows, pgx.RowToStructByPos[lexemeShare])
	}
	if err != nil {
		// Tried again in a minute, not on every query.
		s.sharesAt = time.Now().Add(time.Minute - sharesTTL)
		s.log.Warn("search: reading the words' statistics; words are searched in the query's order", "err", err)
		return s.shares
	}
	s.sharesAt = time.Now()
	s.shares = map[string]float64{}
	for _, st := range stats {
		s.shares[st.Lexeme] = st.Share
	}
	return s.shares
}

// rankScan bounds how many of the newest matching moments are ranked: ranking every moment with
// a common word costs seconds at a million moments, and of equal matches a security team wants
// the recent ones.
const rankScan = 300

// recentScan is how many of the newest moments passing the filters are looked through first
// (moment_search holds 30 to a page: about 3 ms).
const recentScan = 10000

// A word group in at least commonShare of moments is left out of the full-text index's
// conditions once the rarer ones are expected in at most rareShare of moments.
const (
	commonShare = 0.5
	rareShare   = 0.002
)

// text ranks moments by full text over caption and object labels, and the names of the tenant's
// cameras, in moment_search. Moments matching every query word come first; only when fewer than
// need do, moments matching any word, or of a camera a word names, follow, ranked half as high.
func (s *Searcher) text(ctx context.Context, q Query, f filter, t terms, depth, need int) ([]candidate, error) {
	if len(t.groups) == 0 {
		return nil, nil
	}
	every := everyGroup(t.shares)
	// Whether the filters leave more moments than the recentScan newest, counted at most once.
	beyond := sync.OnceValues(func() (bool, error) { return s.beyondRecent(ctx, q, f) })
	all, err := s.newest(ctx, q, f, t, every, t.all, 1, depth, need, beyond)
	if err != nil || len(all) >= need {
		return all, err
	}
	match := "e.search @@ $2::tsquery"
	if len(t.sources) > 0 {
		match = "(e.search @@ $2::tsquery OR e.video_id = ANY($3::int[]))"
	}
	some, err := s.newest(ctx, q, f, t, match+" AND NOT ("+every+")", t.any, 0.5, depth-len(all), need-len(all), beyond)
	for i := range some {
		some[i].position += len(all)
	}
	return append(all, some...), err
}

// everyGroup returns the SQL condition that a moment (e) has every group of words ($5), the
// groups in order, the rarest first. Each is a condition of its own: the full-text index then
// leapfrogs from one word's moments to the next's (two black cars parked main: 8 ms against 20
// for the groups in one tsquery). A group in most moments (a person, say) is only checked on the
// moments the rarer ones find, once those are expected in at most rareShare of moments (as if
// independent): leapfrogging its long lists cost more than the check (two men loitering front:
// 9 ms against 5). ts_match_vq is @@ by name, which the planner does not take to the index.
func everyGroup(shares []float64) string {
	var every strings.Builder
	expected := 1.0
	for i, share := range shares {
		if i > 0 {
			every.WriteString(" AND ")
		}
		if i > 0 && share >= commonShare && expected <= rareShare {
			fmt.Fprintf(&every, "ts_match_vq(e.search, ($5::text[])[%d]::tsquery)", i+1)
			continue
		}
		expected *= share
		fmt.Fprintf(&every, "e.search @@ ($5::text[])[%d]::tsquery", i+1)
	}
	return every.String()
}

// newest ranks the newest rankScan moments that match (SQL on moment_search e, with $2 the
// tsquery ranked by, weighted by weight, $3 the named cameras and $5 the groups of words) and
// pass f, and returns the best limit; enough is how many the caller cannot do without.
//
// The planner cannot be left to find them. Walking the time index back until enough match has no
// bound: it expected 3,645 moments to say "barrier", "gentleman" or "lug", none did, and it read
// all 900,000 (540 ms). Reading every match through the full-text index costs as many moments as
// match: it multiplies the words' shares as if they were independent, a caption's are not
// ("parking lot", "near the loading dock"), and expecting an eighth of the true matches it read
// all 62,000 of "near loading" (280 ms). So the recentScan newest moments are looked through
// first, which bounds the walk. Only when they hold fewer than enough matches, and the filters
// leave more moments than they are (beyond), is the full-text index read: its cost is that of
// the rarest word's posting list, not of the matches, and common words together ("man walking
// car drives": 8,000 matches among lists of 100,000s) cost 90 ms there against 3 ms for the
// newest moments. The list then holds the newest moments' matches rather than the best of the
// rankScan newest; ranking favours recent moments anyway.
func (s *Searcher) newest(ctx context.Context, q Query, f filter, t terms, match, ranked string, weight float64, limit, enough int, beyond func() (bool, error)) ([]candidate, error) {
	where, args := f.where(6)
	args = append([]any{q.Tenant, ranked, t.sources, weight, t.groups}, args...)
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
		FROM moment_search e WHERE e.tenant = $1`+where+`
		ORDER BY e.started_at DESC LIMIT `+fmt.Sprint(recentScan)+`) e WHERE `+match), args...)
	if err != nil {
		return nil, err
	}
	recent, err := collect(rows)
	if err != nil || len(recent) >= enough {
		return recent, err
	}
	if more, err := beyond(); err != nil || !more {
		return recent, err
	}
	// Bitmap scans only: the full-text index, not a walk of the time index.
	return s.collectWith(ctx, []string{"enable_indexscan", "off", "enable_seqscan", "off"},
		query("moment_search e WHERE e.tenant = $1 AND "+match+where), args...)
}

// beyondRecent reports whether q's filters may leave more than the recentScan newest moments.
// Where they leave fewer, the newest were all of them and the full-text index has nothing to
// add. It counts what the coarse filter keeps, a superset, from the btree alone: 1 ms against 3
// for the whole filter, read from the table. In time order, as the newest were read: without
// it, the planner may read the table from its oldest moments on to find the first recentScan of
// a time range (100 ms).
func (s *Searcher) beyondRecent(ctx context.Context, q Query, f filter) (bool, error) {
	where, args := f.coarse().where(2)
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM moment_search e WHERE e.tenant = $1`+where+`
		ORDER BY e.started_at DESC LIMIT `+fmt.Sprint(recentScan)+`) w`, append([]any{q.Tenant}, args...)...).Scan(&n)
	return n >= recentScan, err
}

// collectWith runs query with settings (name, value pairs) in force for it alone, and reads its
// candidates as collect does. Both go in one round trip: a pipeline of statements runs as one
// implicit transaction, the one set_config's local settings last for.
func (s *Searcher) collectWith(ctx context.Context, settings []string, query string, args ...any) ([]candidate, error) {
	var sets []string
	params := make([]any, len(settings))
	for i, v := range settings {
		if i%2 == 0 {
			sets = append(sets, fmt.Sprintf("set_config($%d, $%d, true)", i+1, i+2))
		}
		params[i] = v
	}
	b := &pgx.Batch{}
	b.Queue("SELECT "+strings.Join(sets, ", "), params...)
	b.Queue(query, args...)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	out, err := collect(rows)
	if err != nil {
		return nil, err
	}
	return out, br.Close()
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
	if f.narrow() {
		if plan, err = s.plan(ctx, q.Tenant, f); err != nil {
			return nil, "", err
		}
	}
	// Bitmap scans of the btree stay allowed for the exact plan; only the HNSW index scan is
	// ruled out.
	settings := []string{"enable_indexscan", "off"}
	if plan == "hnsw" {
		settings = []string{"hnsw.ef_search", fmt.Sprint(min(1000, max(s.cfg.EFSearch, depth))),
			"hnsw.iterative_scan", "relaxed_order"}
	}
	where, args := f.where(4)
	out, err := s.collectWith(ctx, settings, `SELECT e.moment_uid::text, e.embedding <=> $2 AS d, false,
			e.started_at, coalesce(c.priority, 0)
		FROM video_events e LEFT JOIN cameras c ON c.video_id = e.video_id
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

// planTTL is how long a filter's plan is kept: its estimate changes as moments come and go,
// slowly against a minute.
const planTTL = time.Minute

// plan chooses the vector path's plan for the tenant's filter from the planner's estimate of the
// moments it leaves: counting them could cost a scan of the table. The estimate does not depend
// on the query's words and the same filters come back query after query (a guard's "last 30
// days"), so it is kept for planTTL, with its times to the minute: asking costs 1–2 ms of a
// query's 10–20.
func (s *Searcher) plan(ctx context.Context, tenant string, f filter) (string, error) {
	where, args := f.where(2)
	values := make([]any, len(args))
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			a = t.Truncate(time.Minute).Unix()
		}
		values[i] = a
	}
	id := fmt.Sprintf("%q %q %v", tenant, where, values)
	s.plansMu.Lock()
	p, ok := s.plans[id]
	s.plansMu.Unlock()
	if ok && time.Since(p.at) < planTTL {
		return p.plan, nil
	}
	var explained []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := s.pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM video_events e
		WHERE e.tenant = $1 AND e.embedding IS NOT NULL`+where, append([]any{tenant}, args...)...).Scan(&explained); err != nil {
		return "", err
	}
	plan := "hnsw"
	if len(explained) == 1 && explained[0].Plan.Rows <= float64(s.cfg.ExactBelow) {
		plan = "exact"
	}
	s.plansMu.Lock()
	defer s.plansMu.Unlock()
	if len(s.plans) >= maxPlans {
		clear(s.plans) // rarely full: a tenant's filters are few
	}
	s.plans[id] = cachedPlan{plan, time.Now()}
	return plan, nil
}

// maxPlans bounds the plans kept.
const maxPlans = 4096

// cachedPlan is a filter's plan and when it was chosen.
type cachedPlan struct {
	plan string
	at   time.Time
}

// pinned returns the moments pinned to q's text that pass its filters, in pin order.
func (s *Searcher) pinned(ctx context.Context, q Query, f filter) ([]candidate, error) {
	where, args := f.where(3)
	rows, err := s.pool.Query(ctx, `SELECT p.moment_uid::text, 0::float8, false, e.started_at, coalesce(c.priority, 0)
		FROM search_pins p
		JOIN video_events e ON e.moment_uid = p.moment_uid AND e.tenant = p.tenant
		LEFT JOIN cameras c ON c.video_id = e.video_id
		WHERE p.tenant = $1 AND p.query = $2`+where+`
		ORDER BY p.position`, append([]any{q.Tenant, normalize(q.Text)}, args...)...)
	if err != nil {
		return nil, err
	}
	return collect(rows)
}
