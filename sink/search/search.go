// Package search owns the read side of moments: turning a plain-language query into ranked
// moments of one tenant.
package search

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Limits on a query.
const (
	DefaultTopK  = 10
	MaxTopK      = 100
	MaxQueryRune = 500
)

// ErrInvalid marks a query the caller must fix; its message says how.
var ErrInvalid = errors.New("invalid query")

// Query is one search.
type Query struct {
	Tenant string
	Text   string
	// TopK is how many results to return: 1 to MaxTopK; 0 means DefaultTopK.
	TopK int
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
}

// Response is the answer to a query. Degraded names the parts of retrieval that could not take
// part (none yet: only full text exists).
type Response struct {
	Results  []Result `json:"results"`
	Degraded []string `json:"degraded"`
}

// Searcher runs queries against vigil's database.
type Searcher struct {
	pool *pgxpool.Pool
}

// New returns a searcher over pool.
func New(pool *pgxpool.Pool) *Searcher { return &Searcher{pool: pool} }

// Validate checks q and fills in defaults.
func (q *Query) Validate() error {
	q.Text = strings.TrimSpace(q.Text)
	switch {
	case q.Text == "":
		return fmt.Errorf("%w: the query is empty", ErrInvalid)
	case !utf8.ValidString(q.Text):
		return fmt.Errorf("%w: the query is not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(q.Text) > MaxQueryRune:
		return fmt.Errorf("%w: the query is longer than %d characters", ErrInvalid, MaxQueryRune)
	case strings.ContainsRune(q.Text, 0):
		return fmt.Errorf("%w: the query contains a NUL character", ErrInvalid)
	case q.TopK < 0 || q.TopK > MaxTopK:
		return fmt.Errorf("%w: top_k must be between 1 and %d", ErrInvalid, MaxTopK)
	}
	if q.TopK == 0 {
		q.TopK = DefaultTopK
	}
	return nil
}

// searchSQL ranks moments by full text over object labels (weight A) and caption (weight B).
// Query words are ORed, so "person with a bicycle" still finds a moment with only a bicycle,
// ranked below one with both. Normalisation 32 maps the rank into [0, 1).
const searchSQL = `
WITH q AS (SELECT replace(plainto_tsquery('english', $2)::text, ' & ', ' | ')::tsquery AS q)
SELECT e.moment_uid::text, e.video_id, v.name, e."timestamp", e.end_s, e.started_at, e.ended_at,
	e.caption, e.yolo_metadata, ts_rank_cd(e.search, q.q, 32) AS score
FROM video_events e JOIN videos v ON v.video_id = e.video_id AND v.tenant = e.tenant, q
WHERE e.tenant = $1 AND e.search @@ q.q
ORDER BY score DESC, e.started_at DESC, e.moment_uid
LIMIT $3`

// Search returns the tenant's moments that best match q.
func (s *Searcher) Search(ctx context.Context, q Query) (Response, error) {
	if err := q.Validate(); err != nil {
		return Response{}, err
	}
	rows, err := s.pool.Query(ctx, searchSQL, q.Tenant, q.Text, q.TopK)
	if err != nil {
		return Response{}, fmt.Errorf("search: %w", err)
	}
	results, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Result, error) {
		var r Result
		err := row.Scan(&r.MomentID, &r.VideoID, &r.Source, &r.StartS, &r.EndS, &r.StartedAt,
			&r.EndedAt, &r.Caption, &r.Objects, &r.Score)
		return r, err
	})
	if err != nil {
		return Response{}, fmt.Errorf("search: %w", err)
	}
	if results == nil {
		results = []Result{}
	}
	return Response{Results: results, Degraded: []string{}}, nil
}
