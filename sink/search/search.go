// Package search owns the read side of moments: turning a plain-language query into ranked
// moments of one tenant. Full text over captions, object labels and source names (English
// stemming, with the security synonym list) and nearest neighbours over the caption embeddings
// are fused by reciprocal rank, then lifted by recency and source priority; admins can pin
// moments to a query, and ask why a moment did not come back.
package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInvalid marks a query the caller must fix; its message says how.
var ErrInvalid = errors.New("invalid query")

// Embedder turns a query into the sentence embedding moments' captions were given;
// *embed.Embedder is one.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Config tunes ranking and the plans.
type Config struct {
	// Timeout bounds a query that brings no deadline of its own. It defaults to 500ms.
	Timeout time.Duration
	// PathShare is the part of a query's time the full-text and the vector path (which run side
	// by side) may each take before the query goes on without it. It defaults to 0.6.
	PathShare float64
	// Candidates is how many moments each path ranks before fusion. It defaults to 100.
	Candidates int
	// RRFK is reciprocal rank fusion's k: a result at rank r scores 1/(k+r). It defaults to 60.
	RRFK float64
	// RecencyWeight lifts a moment by up to this share of its score, halving every
	// RecencyHalfLife of age (default 7 days); 0 does not lift.
	RecencyWeight   float64
	RecencyHalfLife time.Duration
	// PriorityWeight lifts a moment by this share of its score times its camera's priority
	// (0 to 1); 0 does not lift.
	PriorityWeight float64
	// ExactBelow is the most moments a filter may leave for the vector path to compare the
	// query with all of them (exact, over the btree of camera and time); above it the HNSW index
	// answers, scanning on until enough pass the filter. It defaults to 20000.
	ExactBelow int
	// EFSearch is HNSW's candidate list size. It defaults to 400: at a million moments (make
	// bench-search, two builds of the graph of migration 0009) 200 found 0.95–0.98 of the true
	// ten nearest, 400 0.98–0.99 and 800 0.99, for 4, 5.5 and 9 ms.
	EFSearch int
}

func (c *Config) defaults() {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
	def(&c.PathShare, 0.6)
	def(&c.RRFK, 60)
	if c.Candidates <= 0 {
		c.Candidates = 100
	}
	if c.RecencyHalfLife <= 0 {
		c.RecencyHalfLife = 7 * 24 * time.Hour
	}
	if c.ExactBelow <= 0 {
		c.ExactBelow = 20000
	}
	if c.EFSearch <= 0 {
		c.EFSearch = 400
	}
}

// Result is one moment that matched. Later versions may add fields, never rename these.
type Result struct {
	MomentID  string         `json:"moment_id"`
	VideoID   int64          `json:"video_id"`
	Source    string         `json:"source"`
	StartS    float64        `json:"start_s"`
	EndS      float64        `json:"end_s"`
	StartedAt time.Time      `json:"started_at"`
	EndedAt   time.Time      `json:"ended_at"`
	Caption   string         `json:"caption"`
	Objects   map[string]int `json:"objects"`
	Score     float64        `json:"score"`
	// Snippet is the caption, HTML-escaped, with the words that matched in <mark>.
	Snippet string `json:"snippet"`
	// ThumbnailURL is where the moment's best frame is served.
	ThumbnailURL string `json:"thumbnail_url"`
	// Pinned is set when an admin pinned the moment to this query.
	Pinned  bool     `json:"pinned,omitempty"`
	Explain *Explain `json:"explain,omitempty"`
}

// Explain is how a result's score came about.
type Explain struct {
	// TextRank is the full-text rank and TextPosition the place in the full-text list (from 1);
	// both absent when no query word matched.
	TextRank     *float64 `json:"text_rank,omitempty"`
	TextPosition *int     `json:"text_position,omitempty"`
	// VectorDistance is the cosine distance of the caption's embedding to the query's and
	// VectorPosition the place among the nearest (from 1); absent when not among them.
	VectorDistance *float64 `json:"vector_distance,omitempty"`
	VectorPosition *int     `json:"vector_position,omitempty"`
	// RRF is the fused score; RecencyBoost and PriorityBoost the shares it was lifted by.
	RRF           float64 `json:"rrf"`
	RecencyBoost  float64 `json:"recency_boost"`
	PriorityBoost float64 `json:"priority_boost"`
	Pinned        bool    `json:"pinned"`
	// SourceMatched is set when a query word named the moment's camera or file.
	SourceMatched bool `json:"source_matched,omitempty"`
}

// Response is the answer to a query. Degraded names the parts of retrieval that could not take
// part: "embedder" when no embedder is installed and "vector" when the vector path failed or ran
// out of time (the results then come from full text alone), "text" when the full-text path did
// (they come from the vector path alone).
type Response struct {
	Results  []Result `json:"results"`
	Degraded []string `json:"degraded"`
	// NextCursor fetches the next page; absent on the last.
	NextCursor string `json:"next_cursor,omitempty"`
	// Plan says how the vector path ran (exact, hnsw), with explain.
	Plan string `json:"plan,omitempty"`
}

// Searcher runs queries against vigil's database.
type Searcher struct {
	pool *pgxpool.Pool
	emb  Embedder
	cfg  Config
	log  *slog.Logger

	sharesMu sync.Mutex
	sharesAt time.Time
	shares   map[string]float64 // by lexeme; never changed once read

	plansMu sync.Mutex
	plans   map[string]cachedPlan // by tenant and filter
}

// New returns a searcher over pool; emb may be nil (full text only).
func New(pool *pgxpool.Pool, emb Embedder, cfg Config, log *slog.Logger) *Searcher {
	cfg.defaults()
	return &Searcher{pool: pool, emb: emb, cfg: cfg, log: log, plans: map[string]cachedPlan{}}
}

// candidate is a moment one path found, with its place in that path's list, and what ranking
// lifts it by: read with it, so that fusion needs no query of its own.
type candidate struct {
	id       string
	position int     // from 1
	value    float64 // text rank, or vector distance
	source   bool    // text path: a query word named its source
	started  time.Time
	priority float32 // of its camera
}

// ranked is a fused result before its details are read.
type ranked struct {
	id          string
	text, vec   *candidate
	rrf, score  float64
	pinned      bool
	recency     float64 // the boosts' shares
	priority    float64
	sourceMatch bool
}

// Search returns the tenant's moments that best match q.
func (s *Searcher) Search(ctx context.Context, q Query) (Response, error) {
	if err := q.Validate(); err != nil {
		return Response{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	offset, err := q.offset()
	if err != nil {
		return Response{}, err
	}
	f, err := s.resolve(ctx, q)
	if err != nil {
		return Response{}, err
	}
	list, t, resp, err := s.rank(ctx, q, f, max(s.cfg.Candidates, offset+q.TopK+1), offset+q.TopK)
	if err != nil {
		return Response{}, err
	}
	if offset < len(list) {
		page := list[offset:min(len(list), offset+q.TopK)]
		if resp.Results, err = s.details(ctx, q, t, page); err != nil {
			return Response{}, err
		}
		if offset+q.TopK < len(list) {
			resp.NextCursor = q.cursor(offset + q.TopK)
		}
	}
	if !q.Explain {
		resp.Plan = ""
	}
	return resp, nil
}

// rank runs both paths and fuses them into the full ranking, pins first, up to depth results
// per path; need is how many the caller will show. It returns the query's words as the full-text
// path searched them. Each path has PathShare of the time left: one that fails or runs out of it
// leaves the answer to the other, and Degraded says so.
func (s *Searcher) rank(ctx context.Context, q Query, f filter, depth, need int) ([]ranked, terms, Response, error) {
	resp := Response{Results: []Result{}, Degraded: []string{}}
	var (
		pctx   = ctx // full text alone has all the time
		vec    []candidate
		vecErr error
		wg     sync.WaitGroup
	)
	if s.emb != nil {
		deadline, _ := ctx.Deadline()
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Duration(float64(time.Until(deadline))*s.cfg.PathShare)))
		defer cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			vec, resp.Plan, vecErr = s.vector(pctx, q, f, depth)
		}()
	}
	// Pins are few and independent of both paths.
	var (
		pins   []candidate
		pinErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pins, pinErr = s.pinned(ctx, q, f)
	}()
	// The synonyms and words are looked up beside the vector path, which needs neither.
	t, textErr := s.expand(pctx, q.Tenant, q.Text)
	var text []candidate
	if textErr == nil {
		text, textErr = s.text(pctx, q, f, t, depth, need)
	}
	wg.Wait()
	switch {
	case s.emb == nil && textErr != nil:
		return nil, t, resp, failed(ctx, textErr)
	case s.emb == nil:
		resp.Degraded = append(resp.Degraded, "embedder")
	case textErr != nil && vecErr != nil:
		return nil, t, resp, failed(pctx, errors.Join(textErr, vecErr))
	case textErr != nil:
		s.log.Warn("full-text search failed; answering from the vector path", "err", textErr)
		resp.Degraded, text = append(resp.Degraded, "text"), nil
	case vecErr != nil:
		s.log.Warn("vector search failed; answering from full text", "err", vecErr)
		resp.Degraded, vec = append(resp.Degraded, "vector"), nil
	}
	if pinErr != nil {
		return nil, t, resp, failed(ctx, pinErr)
	}
	return s.fuse(text, vec, pins), t, resp, nil
}

// fuse combines the paths' lists by reciprocal rank, lifts by recency and source priority, and
// puts pinned moments first in their order.
func (s *Searcher) fuse(text, vec, pins []candidate) []ranked {
	byID := map[string]*ranked{}
	now := time.Now()
	get := func(c candidate) *ranked {
		r := byID[c.id]
		if r == nil {
			age := max(0, now.Sub(c.started))
			r = &ranked{id: c.id, recency: s.cfg.RecencyWeight * math.Exp2(-float64(age)/float64(s.cfg.RecencyHalfLife)),
				priority: s.cfg.PriorityWeight * float64(c.priority)}
			byID[c.id] = r
		}
		return r
	}
	for i := range text {
		r := get(text[i])
		r.text = &text[i]
		r.rrf += 1 / (s.cfg.RRFK + float64(text[i].position))
		r.sourceMatch = text[i].source
	}
	for i := range vec {
		r := get(vec[i])
		r.vec = &vec[i]
		r.rrf += 1 / (s.cfg.RRFK + float64(vec[i].position))
	}
	for _, p := range pins {
		get(p).pinned = true
	}
	found := make([]ranked, 0, len(byID))
	for _, r := range byID {
		r.score = r.rrf * (1 + r.recency + r.priority)
		found = append(found, *r)
	}
	pinAt := map[string]int{}
	for i, p := range pins {
		pinAt[p.id] = i
	}
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if a.pinned != b.pinned {
			return a.pinned
		}
		if a.pinned {
			return pinAt[a.id] < pinAt[b.id]
		}
		if a.score != b.score {
			return a.score > b.score
		}
		return a.id < b.id
	})
	return found
}

// details reads the results of a page, in its order.
func (s *Searcher) details(ctx context.Context, q Query, t terms, page []ranked) ([]Result, error) {
	ids := make([]string, len(page))
	for i, r := range page {
		ids[i] = r.id
	}
	rows, err := s.pool.Query(ctx, `
		SELECT e.moment_uid::text, e.video_id, v.name, e."timestamp", e.end_s, e.started_at, e.ended_at,
			e.caption, e.yolo_metadata,
			coalesce(ts_headline('english', e.caption, nullif($2, '')::tsquery,
				'StartSel='||chr(2)||', StopSel='||chr(3)||', HighlightAll=true'), e.caption)
		FROM video_events e JOIN videos v ON v.video_id = e.video_id AND v.tenant = e.tenant
		WHERE e.tenant = $1 AND e.moment_uid = ANY($3::uuid[])`, q.Tenant, t.any, ids)
	if err != nil {
		return nil, failed(ctx, err)
	}
	byID := map[string]Result{}
	for rows.Next() {
		var r Result
		var marked string
		if err := rows.Scan(&r.MomentID, &r.VideoID, &r.Source, &r.StartS, &r.EndS, &r.StartedAt,
			&r.EndedAt, &r.Caption, &r.Objects, &marked); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search: %w", err)
		}
		r.Snippet = highlight(marked)
		r.ThumbnailURL = "/api/v1/moments/" + r.MomentID + "/thumbnail.jpg"
		byID[r.MomentID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	out := make([]Result, 0, len(page))
	for _, p := range page {
		r, ok := byID[p.id]
		if !ok {
			continue // deleted since it was ranked
		}
		r.Score, r.Pinned = p.score, p.pinned
		if q.Explain {
			r.Explain = p.explain()
		}
		out = append(out, r)
	}
	return out, nil
}

func (r ranked) explain() *Explain {
	e := &Explain{RRF: r.rrf, RecencyBoost: r.recency, PriorityBoost: r.priority, Pinned: r.pinned, SourceMatched: r.sourceMatch}
	if r.text != nil {
		e.TextRank, e.TextPosition = &r.text.value, &r.text.position
	}
	if r.vec != nil {
		e.VectorDistance, e.VectorPosition = &r.vec.value, &r.vec.position
	}
	return e
}

// collect reads candidates (id, value, source matched, started_at, camera priority) in their
// list order.
func collect(rows pgx.Rows) ([]candidate, error) {
	var out []candidate
	for rows.Next() {
		c := candidate{position: len(out) + 1}
		if err := rows.Scan(&c.id, &c.value, &c.source, &c.started, &c.priority); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// highlight escapes a caption for HTML and turns ts_headline's markers into <mark>.
func highlight(marked string) string {
	var b strings.Builder
	for _, r := range marked {
		switch r {
		case 2:
			b.WriteString("<mark>")
		case 3:
			b.WriteString("</mark>")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normalize is the form a query is pinned under: lower case, single spaces.
func normalize(text string) string {
	return strings.Join(strings.Fields(strings.ToLower(text)), " ")
}

// words splits a query into lower-case words of letters and digits.
func words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// failed wraps a database error; past the deadline it is the deadline's, since the server's
// "canceling statement" is only how the cancelled query ended.
func failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return fmt.Errorf("search: %w", err)
}
