package search

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Limits on what admins store.
const (
	// A list at these limits still fits the API's 64 KiB body.
	maxGroups     = 200
	maxGroupWords = 20
	maxPins       = 20
)

var synonymWord = regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}][\p{Ll}\p{Lo}\p{N} '-]{0,39}$`)

// Synonyms returns the groups of words the tenant's queries expand with: its own, or the
// defaults when it has none.
func (s *Searcher) Synonyms(ctx context.Context, tenant string) ([][]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT words FROM search_synonyms
		WHERE tenant = CASE WHEN EXISTS (SELECT 1 FROM search_synonyms WHERE tenant = $1) THEN $1 ELSE '' END
		ORDER BY words`, tenant)
	if err != nil {
		return nil, fmt.Errorf("synonyms: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
	if err != nil {
		return nil, fmt.Errorf("synonyms: %w", err)
	}
	return groups, nil
}

// SetSynonyms replaces the tenant's synonym groups; none returns it to the defaults. Words are
// stored in lower case.
func (s *Searcher) SetSynonyms(ctx context.Context, tenant string, groups [][]string) error {
	if len(groups) > maxGroups {
		return fmt.Errorf("%w: at most %d synonym groups", ErrInvalid, maxGroups)
	}
	clean := make([][]string, 0, len(groups))
	for i, g := range groups {
		var words []string
		for _, w := range g {
			w = strings.Join(strings.Fields(strings.ToLower(w)), " ")
			if !synonymWord.MatchString(w) {
				return fmt.Errorf("%w: group %d: %q is not a word or short phrase of letters and digits", ErrInvalid, i, w)
			}
			words = append(words, w)
		}
		slices.Sort(words)
		words = slices.Compact(words)
		if len(words) < 2 || len(words) > maxGroupWords {
			return fmt.Errorf("%w: group %d must hold 2 to %d different words", ErrInvalid, i, maxGroupWords)
		}
		clean = append(clean, words)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM search_synonyms WHERE tenant = $1", tenant); err != nil {
			return err
		}
		for _, g := range clean {
			if _, err := tx.Exec(ctx, "INSERT INTO search_synonyms (tenant, words) VALUES ($1, $2) ON CONFLICT DO NOTHING", tenant, g); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pins returns every query the tenant pinned moments to, with the moments in order.
func (s *Searcher) Pins(ctx context.Context, tenant string) (map[string][]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT query, moment_uid::text FROM search_pins WHERE tenant = $1
		ORDER BY query, position`, tenant)
	if err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	out := map[string][]string{}
	var query, id string
	_, err = pgx.ForEachRow(rows, []any{&query, &id}, func() error {
		out[query] = append(out[query], id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	return out, nil
}

// SetPins pins moments, in order, to a query of the tenant; none unpins them all. Every moment
// must be the tenant's.
func (s *Searcher) SetPins(ctx context.Context, tenant, query string, ids []string) error {
	query = normalize(query)
	switch {
	case query == "" || len([]rune(query)) > MaxQueryRune:
		return fmt.Errorf("%w: a pin needs a query of 1 to %d characters", ErrInvalid, MaxQueryRune)
	case len(ids) > maxPins:
		return fmt.Errorf("%w: at most %d moments pinned to a query", ErrInvalid, maxPins)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM search_pins WHERE tenant = $1 AND query = $2", tenant, query); err != nil {
			return err
		}
		for i, id := range ids {
			tag, err := tx.Exec(ctx, `INSERT INTO search_pins (tenant, query, moment_uid, position)
				SELECT $1, $2, moment_uid, $4 FROM video_events
				WHERE tenant = $1 AND moment_uid::text = $3
				ON CONFLICT DO NOTHING`, tenant, query, strings.ToLower(id), i)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 && !slices.Contains(ids[:i], id) {
				return fmt.Errorf("%w: no moment %q", ErrInvalid, id)
			}
		}
		return nil
	})
}
