package search

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotFound is returned for a moment the tenant does not have.
var ErrNotFound = errors.New("no such moment")

// Why says why a moment came back for a query, or did not.
type Why struct {
	MomentID string `json:"moment_id"`
	// Returned is set when the moment is on the query's first page.
	Returned bool `json:"returned"`
	// Rank is its place in the whole ranking, from 1; 0 when it is not ranked at all.
	Rank    int      `json:"rank"`
	Reasons []string `json:"reasons"`
	// Explain is its score parts when it is ranked.
	Explain  *Explain `json:"explain,omitempty"`
	Degraded []string `json:"degraded"`
}

// Why explains where the moment id stands for q: which filter left it out, whether any query word
// matched it, how near its caption is, and where it ranked.
func (s *Searcher) Why(ctx context.Context, q Query, id string) (Why, error) {
	if err := q.Validate(); err != nil {
		return Why{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 4*s.cfg.Timeout)
		defer cancel()
	}
	var (
		m        Result
		kind     string
		embedded bool
	)
	err := s.pool.QueryRow(ctx, `SELECT e.moment_uid::text, e.video_id, v.name, v.kind, e."timestamp", e.end_s,
			e.started_at, e.ended_at, e.yolo_metadata, e.embedding IS NOT NULL
		FROM video_events e JOIN videos v ON v.video_id = e.video_id AND v.tenant = e.tenant
		WHERE e.tenant = $1 AND e.moment_uid::text = $2`, q.Tenant, strings.ToLower(id)).Scan(
		&m.MomentID, &m.VideoID, &m.Source, &kind, &m.StartS, &m.EndS, &m.StartedAt, &m.EndedAt, &m.Objects, &embedded)
	if errors.Is(err, pgx.ErrNoRows) {
		return Why{}, ErrNotFound
	}
	if err != nil {
		return Why{}, fmt.Errorf("why: %w", err)
	}
	w := Why{MomentID: m.MomentID, Reasons: filteredOut(q, m, kind)}
	f, err := s.resolve(ctx, q)
	if err != nil {
		return Why{}, err
	}
	list, t, resp, err := s.rank(ctx, q, f, MaxDepth, MaxDepth)
	if err != nil {
		return Why{}, err
	}
	w.Degraded = resp.Degraded
	var all, some bool
	if t.any != "" {
		if err := s.pool.QueryRow(ctx, `SELECT e.search @@ $2::tsquery, e.search @@ $3::tsquery FROM video_events e
			WHERE e.tenant = $1 AND e.moment_uid::text = $4`, q.Tenant, t.all, t.any, m.MomentID).Scan(&all, &some); err != nil {
			return Why{}, fmt.Errorf("why: %w", err)
		}
	}
	switch {
	case t.any == "" && slices.Contains(w.Degraded, "text"):
		// The words could not be looked up; Degraded says so.
	case t.any == "":
		w.Reasons = append(w.Reasons, "the query has no words full text can search (only stop words or punctuation)")
	case !some:
		w.Reasons = append(w.Reasons, fmt.Sprintf("no query word matched its caption or objects (searched for %s)", strings.Join(t.words, ", ")))
	case !all:
		w.Reasons = append(w.Reasons, "only some of the query's words matched its caption or objects; moments matching all of them rank first")
	}
	if s.emb != nil && !embedded {
		w.Reasons = append(w.Reasons, "it has no caption embedding, so the vector path cannot find it")
	}
	at := slices.IndexFunc(list, func(r ranked) bool { return r.id == m.MomentID })
	switch {
	case at < 0 && len(w.Reasons) == 0:
		w.Reasons = append(w.Reasons, fmt.Sprintf("it is not among the %d best of either path", MaxDepth))
	case at < 0:
	case at < q.TopK:
		w.Returned, w.Rank, w.Explain = true, at+1, list[at].explain()
		w.Reasons = append(w.Reasons, fmt.Sprintf("returned at rank %d", at+1))
	default:
		w.Rank, w.Explain = at+1, list[at].explain()
		w.Reasons = append(w.Reasons, fmt.Sprintf("ranked %d, below the first %d (top_k)", at+1, q.TopK))
	}
	return w, nil
}

// filteredOut lists the filters of q that the moment m (of a source of kind) fails.
func filteredOut(q Query, m Result, kind string) []string {
	var out []string
	if len(q.Cameras) > 0 && !slices.Contains(q.Cameras, m.Source) && !slices.Contains(q.Cameras, strconv.FormatInt(m.VideoID, 10)) {
		out = append(out, fmt.Sprintf("filtered out by camera: it is from %q", m.Source))
	}
	if !q.From.IsZero() && m.EndedAt.Before(q.From) {
		out = append(out, fmt.Sprintf("filtered out by time: it ended at %s, before %s", m.EndedAt.Format(time.RFC3339), q.From.Format(time.RFC3339)))
	}
	if !q.To.IsZero() && !m.StartedAt.Before(q.To) {
		out = append(out, fmt.Sprintf("filtered out by time: it started at %s, not before %s", m.StartedAt.Format(time.RFC3339), q.To.Format(time.RFC3339)))
	}
	for class, n := range q.Objects {
		if m.Objects[class] < n {
			out = append(out, fmt.Sprintf("filtered out by objects: it has %d %s at most at once, the query wants %d", m.Objects[class], class, n))
		}
	}
	if d := time.Duration((m.EndS - m.StartS) * float64(time.Second)); q.MinDuration > 0 && d < q.MinDuration {
		out = append(out, fmt.Sprintf("filtered out by duration: it lasted %s, the query wants %s", d.Round(100*time.Millisecond), q.MinDuration))
	}
	if want := map[string]string{"live": "camera", "upload": "upload"}[q.Kind]; want != "" && kind != want {
		out = append(out, fmt.Sprintf("filtered out by kind: it is from %s %s, the query wants %s", map[string]string{"camera": "a live", "upload": "an"}[kind], map[string]string{"camera": "camera", "upload": "uploaded file"}[kind], q.Kind))
	}
	slices.Sort(out)
	return out
}
