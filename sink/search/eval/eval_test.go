// Package eval measures how well vigil's search finds what people see in the team's demo clips.
// labels.json says, from looking at the frames, when each object class is visible in each clip;
// queries.json lists what a guard might type and which labelled spans answer it. TestEval indexes
// the clips with the real vigil binary and scores its answers. It runs only with VIGIL_EVAL=1
// (make eval), as it indexes four and a half minutes of video; settings in the environment
// (VIGIL_PIPELINE_..., VIGIL_MODELS_...) reach the binary, so a variant can be measured the same way.
package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"unicode"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
)

// clips are the demo clips, in the order they are indexed, with their lengths in seconds
// (ffprobe). The order is fixed because search breaks ties by start time, and a file without a
// creation time starts when it is indexed.
var clips = []struct {
	name   string
	length float64
}{
	{"vtest.avi", 79.5},
	{"car-detection.mp4", 30.2},
	{"one-by-one-person-detection.mp4", 139.4},
	{"cars.mp4", 8.94},
	{"dog.mp4", 9.76},
}

// label is one class seen in one clip: the spans, in seconds from the clip's start, in which it
// is visible, and a sentence of what happens.
type label struct {
	Clip     string      `json:"clip"`
	Class    string      `json:"class"`
	Spans    [][]float64 `json:"spans"`
	Sentence string      `json:"sentence"`
}

// query is a search a guard might type and the labelled spans that answer it. A query with none
// is asked to show what search returns when nothing in the clips fits.
type query struct {
	Text     string `json:"query"`
	Relevant []ref  `json:"relevant"`
	Note     string `json:"note"`
}

// ref points at a label's spans: those listed by index, or all of them when Spans is empty.
type ref struct {
	Clip  string `json:"clip"`
	Class string `json:"class"`
	Spans []int  `json:"spans"`
}

// result is the part of a search result the scores need. It is decoded leniently: the search
// contract only ever adds fields.
type result struct {
	MomentID string         `json:"moment_id"`
	Source   string         `json:"source"`
	StartS   float64        `json:"start_s"`
	EndS     float64        `json:"end_s"`
	Caption  string         `json:"caption"`
	Objects  map[string]int `json:"objects"`
	Score    float64        `json:"score"`
}

type reply struct {
	Results  []result `json:"results"`
	Degraded []string `json:"degraded"`
}

// span is one labelled span, resolved from a ref.
type span struct {
	clip, class string
	start, end  float64
}

func (s span) String() string {
	return fmt.Sprintf("%s %s %.1f–%.1f s", s.clip, s.class, s.start, s.end)
}

// overlaps says whether r covers part of s. The labels are accurate to about a second, and
// moments are seconds to a minute long, so any overlap counts.
func (s span) overlaps(r result) bool {
	return r.Source == s.clip && r.StartS < s.end && s.start < r.EndS
}

func (r result) String() string {
	return fmt.Sprintf("%.3f %s %.1f–%.1f s %s %q", r.Score, r.Source, r.StartS, r.EndS, objects(r.Objects), r.Caption)
}

func objects(m map[string]int) string {
	var parts []string
	for class, n := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", class, n))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

func load(t *testing.T) ([]label, []query) {
	t.Helper()
	var labels []label
	var queries []query
	for file, into := range map[string]any{"labels.json": &labels, "queries.json": &queries} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields() // a misspelt key would silently change what is measured
		if err := dec.Decode(into); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if err := validate(labels, queries); err != nil {
		t.Fatal(err)
	}
	return labels, queries
}

// validate reports every label that names an unknown clip or holds a span outside it, out of
// order or overlapping the one before, and every query whose refs point at nothing.
func validate(labels []label, queries []query) error {
	length := map[string]float64{}
	for _, c := range clips {
		length[c.name] = c.length
	}
	var errs []error
	seen := map[[2]string]int{}
	for i, l := range labels {
		at := fmt.Sprintf("labels.json item %d (%s %s)", i, l.Clip, l.Class)
		n, known := length[l.Clip]
		switch {
		case !known:
			errs = append(errs, fmt.Errorf("%s: unknown clip", at))
		case l.Class == "" || l.Sentence == "" || len(l.Spans) == 0:
			errs = append(errs, fmt.Errorf("%s: class, sentence and spans are required", at))
		}
		if _, dup := seen[[2]string{l.Clip, l.Class}]; dup {
			errs = append(errs, fmt.Errorf("%s: the clip's %s is labelled twice", at, l.Class))
		}
		seen[[2]string{l.Clip, l.Class}] = len(l.Spans)
		prevEnd := 0.0
		for j, s := range l.Spans {
			if len(s) != 2 || s[0] < prevEnd || s[0] >= s[1] || known && s[1] > n {
				errs = append(errs, fmt.Errorf("%s: span %d %v is not [start, end] within 0–%g s, after the one before", at, j, s, n))
				continue
			}
			prevEnd = s[1]
		}
	}
	texts := map[string]bool{}
	scored := false
	for i, q := range queries {
		scored = scored || len(q.Relevant) > 0
		at := fmt.Sprintf("queries.json item %d (%q)", i, q.Text)
		if strings.TrimSpace(q.Text) == "" || texts[q.Text] {
			errs = append(errs, fmt.Errorf("%s: empty or repeated", at))
		}
		texts[q.Text] = true
		for _, r := range q.Relevant {
			n, ok := seen[[2]string{r.Clip, r.Class}]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: no label for %s %s", at, r.Clip, r.Class))
			}
			for _, j := range r.Spans {
				if j < 0 || j >= n {
					errs = append(errs, fmt.Errorf("%s: %s %s has no span %d", at, r.Clip, r.Class, j))
				}
			}
		}
	}
	if !scored {
		errs = append(errs, errors.New("queries.json: no query has relevant spans, so there is nothing to score"))
	}
	return errors.Join(errs...)
}

// TestLabelsAreWellFormed runs everywhere, so that a broken label file fails CI rather than the
// next evaluation.
func TestLabelsAreWellFormed(t *testing.T) {
	labels, queries := load(t)
	t.Logf("%d labels, %d queries", len(labels), len(queries))
}

// spans resolves a query's refs to the labelled spans it should find.
func spans(labels []label, q query) []span {
	var out []span
	for _, r := range q.Relevant {
		for _, l := range labels {
			if l.Clip != r.Clip || l.Class != r.Class {
				continue
			}
			for j, s := range l.Spans {
				if len(r.Spans) == 0 || slices.Contains(r.Spans, j) {
					out = append(out, span{clip: l.Clip, class: l.Class, start: s[0], end: s[1]})
				}
			}
		}
	}
	return out
}

// score is how well one reply answers one query.
type score struct {
	recall5 float64 // share of the relevant spans some top-5 result overlaps
	rr      float64 // 1/rank of the first relevant result in the top 10, else 0
	top1    bool    // the first result overlaps a relevant span
}

func scoreReply(want []span, results []result) score {
	var sc score
	found := 0
	for _, s := range want {
		for _, r := range results[:min(5, len(results))] {
			if s.overlaps(r) {
				found++
				break
			}
		}
	}
	sc.recall5 = float64(found) / float64(len(want))
	for i, r := range results[:min(10, len(results))] {
		if slices.ContainsFunc(want, func(s span) bool { return s.overlaps(r) }) {
			sc.rr = 1 / float64(i+1)
			sc.top1 = i == 0
			break
		}
	}
	return sc
}

// vigil runs the vigil binary on a private data folder, as cmd/vigil's tests do: its own
// PostgreSQL cluster and NATS server, on addresses no developer's vigil uses.
type vigil struct {
	t   *testing.T
	bin string
	env []string
}

func newVigil(t *testing.T) *vigil {
	bin := filepath.Join(t.TempDir(), "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vigilcam/vigil/cmd/vigil").CombinedOutput(); err != nil {
		t.Fatalf("build vigil: %v\n%s", err, out)
	}
	// Not t.TempDir: under root the cluster runs as the postgres user, who must pass through every
	// parent of the data folder, and t.TempDir's parents are private.
	dir, err := os.MkdirTemp("", "vigil-eval-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := append(os.Environ(),
		"VIGIL_DATA_DIR="+dir,
		"VIGIL_HTTP_ADDR=127.0.0.1:"+freePort(t),
		"VIGIL_NATS_EMBEDDED_LISTEN=127.0.0.1:"+freePort(t),
		"VIGIL_DATABASE_URL=", "VIGIL_NATS_URL=", "VIGIL_CONFIG=",
	)
	return &vigil{t: t, bin: bin, env: env}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// run runs a command to its end and returns its stdout; a failure ends the test, as nothing can
// be measured without the index.
func (v *vigil) run(args ...string) string {
	v.t.Helper()
	cmd := exec.Command(v.bin, args...)
	cmd.Env = v.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		v.t.Fatalf("vigil %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func (v *vigil) search(text string, topK int) reply {
	v.t.Helper()
	out := v.run("search", "--json", "--top-k", fmt.Sprint(topK), text)
	var rep reply
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		v.t.Fatalf("search %q: %v\n%s", text, err, out)
	}
	return rep
}

// inventory returns every moment the index holds, for the diagnosis. Each has an object of a class
// the detector keeps by default, and a search for a class name alone finds it whatever the way
// words are combined; the clips make far fewer than 100 moments.
func (v *vigil) inventory() []result {
	var all []result
	for _, class := range configs.Default().Pipeline.Detect.Classes {
		for _, r := range v.search(class, 100).Results {
			if !slices.ContainsFunc(all, func(m result) bool { return m.MomentID == r.MomentID }) {
				all = append(all, r)
			}
		}
	}
	return all
}

// TestEval indexes the demo clips, asks every query and reports recall@5, MRR and the share of
// queries whose first result is relevant, then what likely went wrong with each miss. Queries
// with nothing relevant stay out of those figures; what counts for them is whether search
// answers anyway, a false positive at rank 1. It is a measurement: only a failure to build,
// index or search fails it.
func TestEval(t *testing.T) {
	if os.Getenv("VIGIL_EVAL") != "1" {
		t.Skip("indexes minutes of video: run with VIGIL_EVAL=1 (make eval)")
	}
	labels, queries := load(t)
	sharedtest.YOLO(t)
	v := newVigil(t)
	t.Logf("vigil doctor:\n%s", v.run("doctor"))
	for _, c := range clips {
		t.Log(strings.TrimSpace(v.run("index", sharedtest.Clip(t, c.name))))
	}
	inventory := v.inventory()
	vocabulary := map[string]bool{}
	for _, m := range inventory {
		for _, word := range words(m.Caption) {
			vocabulary[word] = true
		}
		for class := range m.Objects {
			for _, word := range words(class) {
				vocabulary[word] = true
			}
		}
	}

	var table, misses bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUERY\tSPANS\tR@5\tRR\tRANK 1")
	var sum score
	var answered, top1, none, noneAnswered int
	degraded := map[string]bool{}
	for _, q := range queries {
		rep := v.search(q.Text, 10)
		for _, d := range rep.Degraded {
			degraded[d] = true
		}
		first := "(no results)"
		if len(rep.Results) > 0 {
			first = rep.Results[0].String()
		}
		want := spans(labels, q)
		if len(want) == 0 {
			none++
			if len(rep.Results) > 0 {
				noneAnswered++
			}
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\n", q.Text, first)
			continue
		}
		sc := scoreReply(want, rep.Results)
		answered++
		sum.recall5 += sc.recall5
		sum.rr += sc.rr
		mark := "✗"
		if sc.top1 {
			top1++
			mark = "✓"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%s %s\n", q.Text, len(want), sc.recall5, sc.rr, mark, first)
		if sc.recall5 < 1 || !sc.top1 {
			diagnose(&misses, q, want, rep.Results, inventory, vocabulary)
		}
	}
	tw.Flush()
	t.Logf("search quality, %d queries:\n%s", len(queries), table.String())
	t.Logf("why queries miss:\n%s", misses.String())
	t.Logf("objects the index holds that no label names (detector errors, or things too small to label):\n%s",
		unlabelled(labels, inventory))
	var degradedParts []string
	for d := range degraded {
		degradedParts = append(degradedParts, d)
	}
	slices.Sort(degradedParts)
	t.Logf("summary: %d queries with relevant spans: recall@5 %.2f, MRR %.2f, relevant at rank 1 %d/%d (%.0f%%); "+
		"queries with nothing relevant answered with a false positive at rank 1: %d/%d; degraded %v",
		answered, sum.recall5/float64(answered), sum.rr/float64(answered), top1, answered,
		100*float64(top1)/float64(answered), noneAnswered, none, degradedParts)
}

// stopWords are left out of the list of query words no moment mentions, which they would only
// clutter.
var stopWords = []string{"a", "an", "the", "at", "on", "in", "of", "by", "to", "with"}

// diagnose writes why a query likely missed: the query words no indexed moment mentions, and for
// each labelled span it did not find in the top 5 what the index holds there.
func diagnose(w *bytes.Buffer, q query, want []span, results, inventory []result, vocabulary map[string]bool) {
	fmt.Fprintf(w, "%q", q.Text)
	if q.Note != "" {
		fmt.Fprintf(w, " (%s)", q.Note)
	}
	fmt.Fprintln(w, ":")
	var unknown []string
	for _, word := range words(q.Text) {
		if !vocabulary[word] && !slices.Contains(stopWords, word) && !slices.Contains(unknown, word) {
			unknown = append(unknown, word)
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintf(w, "  no moment's objects or caption say %s\n", strings.Join(unknown, ", "))
	}
	if len(results) == 0 {
		fmt.Fprintln(w, "  search returned nothing")
	} else {
		fmt.Fprintf(w, "  rank 1: %s\n", results[0])
	}
	for _, s := range want {
		if slices.ContainsFunc(results[:min(5, len(results))], s.overlaps) {
			continue
		}
		var there []result
		for _, m := range inventory {
			if s.overlaps(m) {
				there = append(there, m)
			}
		}
		switch {
		case len(there) == 0:
			fmt.Fprintf(w, "  missed %s: no moment there (the motion gate or the detector saw nothing)\n", s)
		case !slices.ContainsFunc(there, func(m result) bool { return m.Objects[s.class] > 0 }):
			fmt.Fprintf(w, "  missed %s: the detector saw no %s there, only %s\n", s, s.class, join(there))
		default:
			fmt.Fprintf(w, "  missed %s: indexed as %s, but not in the top 5 (rank %s)\n", s, join(there), rank(there, results))
		}
	}
}

// rank gives the best rank of any of moments among results, or "over 10".
func rank(moments, results []result) string {
	for i, r := range results {
		if slices.ContainsFunc(moments, func(m result) bool { return m.MomentID == r.MomentID }) {
			return fmt.Sprint(i + 1)
		}
	}
	return "over 10"
}

func join(moments []result) string {
	parts := make([]string, len(moments))
	for i, m := range moments {
		parts[i] = m.String()
	}
	return strings.Join(parts, "; ")
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) })
}

// unlabelled lists, moment by moment, the detected classes that the clip's labels do not name.
func unlabelled(labels []label, inventory []result) string {
	var b strings.Builder
	for _, m := range inventory {
		extra := map[string]int{}
		for class, n := range m.Objects {
			if !slices.ContainsFunc(labels, func(l label) bool { return l.Clip == m.Source && l.Class == class }) {
				extra[class] = n
			}
		}
		if len(extra) > 0 {
			fmt.Fprintf(&b, "  %s %.1f–%.1f s: %s\n", m.Source, m.StartS, m.EndS, objects(extra))
		}
	}
	return b.String()
}
