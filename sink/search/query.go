package search

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on a query.
const (
	DefaultTopK  = 10
	MaxTopK      = 100
	MaxQueryRune = 500
	// MaxDepth is the deepest a cursor pages: past it a query should be narrowed by filters.
	MaxDepth = 1000
	// maxFilterItems bounds the cameras and classes a query may name.
	maxFilterItems = 50
)

// Query is one search.
type Query struct {
	Tenant string
	Text   string
	// TopK is how many results to return: 1 to MaxTopK; 0 means DefaultTopK.
	TopK int
	// Cursor continues from a previous page's NextCursor.
	Cursor string
	// Cameras keeps the moments of these sources, by name or id.
	Cameras []string
	// From and To keep moments that overlap the range (either may be zero).
	From, To time.Time
	// Objects keeps moments with at least this many of each class at once.
	Objects map[string]int
	// MinDuration keeps moments at least this long.
	MinDuration time.Duration
	// Kind keeps "live" (camera) or "upload" moments; empty keeps both.
	Kind string
	// Explain adds each result's score parts.
	Explain bool
}

// ParseQuery reads a query from URL parameters: q, top_k, cursor, camera (repeatable or comma
// separated), from and to (RFC 3339), last (a duration back from now: 24h, 90m, 7d), objects
// (person:2,car), min_duration (10s), kind (live or upload) and explain (true).
func ParseQuery(tenant string, v url.Values, now time.Time) (Query, error) {
	q := Query{Tenant: tenant, Text: v.Get("q"), Cursor: v.Get("cursor"), Kind: v.Get("kind")}
	bad := func(format string, args ...any) (Query, error) {
		return Query{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if k := v.Get("top_k"); k != "" {
		n, err := strconv.Atoi(k)
		if err != nil {
			return bad("top_k must be a whole number")
		}
		q.TopK = n
	}
	for _, c := range v["camera"] {
		for _, name := range strings.Split(c, ",") {
			if name = strings.TrimSpace(name); name != "" {
				q.Cameras = append(q.Cameras, name)
			}
		}
	}
	var err error
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(p.name); s != "" {
			if *p.t, err = time.Parse(time.RFC3339, s); err != nil {
				return bad("%s must be a time such as 2026-01-02T15:04:05Z", p.name)
			}
		}
	}
	if s := v.Get("last"); s != "" {
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			return bad("last must be a positive duration such as 24h, 90m or 7d")
		}
		if !q.From.IsZero() {
			return bad("give last or from, not both")
		}
		q.From = now.Add(-d)
	}
	if s := v.Get("objects"); s != "" {
		q.Objects = map[string]int{}
		for _, item := range strings.Split(s, ",") {
			class, count, found := strings.Cut(strings.TrimSpace(item), ":")
			n := 1
			if found {
				if n, err = strconv.Atoi(count); err != nil || n < 1 {
					return bad("objects wants class:count with a count of at least 1, got %q", item)
				}
			}
			q.Objects[strings.ToLower(strings.TrimSpace(class))] = n
		}
	}
	if s := v.Get("min_duration"); s != "" {
		if q.MinDuration, err = parseDuration(s); err != nil || q.MinDuration < 0 {
			return bad("min_duration must be a duration such as 10s")
		}
	}
	if s := v.Get("explain"); s != "" {
		if q.Explain, err = strconv.ParseBool(s); err != nil {
			return bad("explain must be true or false")
		}
	}
	return q, q.Validate()
}

// parseDuration reads Go durations plus whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 3650 {
			return 0, fmt.Errorf("bad days %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

var classPattern = regexp.MustCompile(`^[a-z][a-z ]{0,39}$`)

// Validate checks q and fills in defaults.
func (q *Query) Validate() error {
	q.Text = strings.TrimSpace(q.Text)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	switch {
	case q.Text == "":
		return bad("the query is empty")
	case !utf8.ValidString(q.Text):
		return bad("the query is not valid UTF-8")
	case utf8.RuneCountInString(q.Text) > MaxQueryRune:
		return bad("the query is longer than %d characters", MaxQueryRune)
	case strings.ContainsFunc(q.Text, unicode.IsControl):
		return bad("the query contains control characters")
	case q.TopK < 0 || q.TopK > MaxTopK:
		return bad("top_k must be between 1 and %d", MaxTopK)
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return bad("from must be before to")
	case len(q.Cameras) > maxFilterItems || len(q.Objects) > maxFilterItems:
		return bad("at most %d cameras and %d classes", maxFilterItems, maxFilterItems)
	case q.Kind != "" && q.Kind != "live" && q.Kind != "upload":
		return bad("kind must be live or upload")
	case q.MinDuration > 24*time.Hour:
		return bad("min_duration must be at most 24h")
	}
	for _, c := range q.Cameras {
		if utf8.RuneCountInString(c) > 100 || !utf8.ValidString(c) {
			return bad("a camera is named by at most 100 characters")
		}
	}
	for class := range q.Objects {
		if !classPattern.MatchString(class) {
			return bad("%q is not an object class", class)
		}
	}
	if q.TopK == 0 {
		q.TopK = DefaultTopK
	}
	return nil
}

// cursorState is what a cursor carries: where the next page starts, and which query it belongs
// to, so that a cursor is not replayed against another.
type cursorState struct {
	Offset int    `json:"o"`
	Query  string `json:"q"`
}

// fingerprint identifies the query a cursor continues.
func (q Query) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%v\x00%d\x00%d\x00%v\x00%d\x00%s", q.Tenant, normalize(q.Text), q.Cameras,
		q.From.UnixNano(), q.To.UnixNano(), q.Objects, q.MinDuration, q.Kind)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:9])
}

func (q Query) cursor(offset int) string {
	if offset >= MaxDepth {
		return ""
	}
	b, _ := json.Marshal(cursorState{Offset: offset, Query: q.fingerprint()})
	return base64.RawURLEncoding.EncodeToString(b)
}

// offset is where the page q.Cursor asks for starts.
func (q Query) offset() (int, error) {
	if q.Cursor == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	var c cursorState
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Offset < 0 || c.Offset >= MaxDepth {
		return 0, fmt.Errorf("%w: the cursor is not one this search gave", ErrInvalid)
	}
	if c.Query != q.fingerprint() {
		return 0, fmt.Errorf("%w: the cursor belongs to another query; repeat the query's parameters with it", ErrInvalid)
	}
	return c.Offset, nil
}
