package caption

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// scriptLM is a language model given as a table from a whole history to next-token logits. Like
// the decoder's cache, it keeps each row's history itself and rebuilds it from the parents the
// search reports, so wrong beam bookkeeping gives it a history the table does not have.
type scriptLM struct {
	vocab    int
	next     map[string]map[int64]float32
	fallback map[int64]float32 // logits of a history missing from next
	rows     [][]int64
	steps    int
}

func key(seq []int64) string { return fmt.Sprint(seq) }

func (m *scriptLM) step(_ context.Context, tokens []int64, parents []int) ([][]float32, error) {
	m.steps++
	rows := make([][]int64, len(tokens))
	for i, t := range tokens {
		var h []int64
		switch {
		case m.rows == nil: // the first step: every row holds only the start token
		case parents == nil:
			h = m.rows[i]
		default:
			h = m.rows[parents[i]]
		}
		rows[i] = append(slices.Clone(h), t)
	}
	m.rows = rows
	out := make([][]float32, len(rows))
	for i, h := range rows {
		l := make([]float32, m.vocab)
		for t := range l {
			l[t] = -20
		}
		next, ok := m.next[key(h)]
		if !ok {
			next = m.fallback
		}
		for t, v := range next {
			l[t] = v
		}
		out[i] = l
	}
	return out, nil
}

// Tokens of the scripted captions.
const (
	tBOS, tEOS                            = 0, 2
	tA, tThe, tCar, tTruck, tRed, tDot    = 3, 4, 5, 6, 7, 8
	tFail, tOn, tRoad                     = 9, 10, 11
	greedyCaption, beamCaption, failToken = "[2 0 3 5 8]", "[2 0 4 7 5 8]", 9
)

// carScript prefers "A" at the first word, but every continuation of "A" is unsure, while "The"
// leads to a certain "The red car.": greedy search says "A car.", beam search "The red car.".
func carScript() *scriptLM {
	return &scriptLM{vocab: 12, fallback: map[int64]float32{tFail: 10}, next: map[string]map[int64]float32{
		"[2]":           {tBOS: 10},
		"[2 0]":         {tA: 3.0, tThe: 2.9},
		"[2 0 3]":       {tCar: 1.0, tTruck: 0.9, tOn: 0.8, tRoad: 0.7},
		"[2 0 3 5]":     {tDot: 10},
		"[2 0 3 5 8]":   {tEOS: 10},
		"[2 0 4]":       {tRed: 10},
		"[2 0 4 7]":     {tCar: 10},
		"[2 0 4 7 5]":   {tDot: 10},
		"[2 0 4 7 5 8]": {tEOS: 10},
	}}
}

func florenceGeneration(beams int) generation {
	return generation{Beams: beams, MaxNew: 10, NoRepeat: 3, Start: 2, EOS: 2, ForcedBOS: 0, ForcedEOS: 2,
		LengthPenalty: 1, EarlyStopping: true}
}

func TestGreedyAndBeamSearch(t *testing.T) {
	for _, tc := range []struct {
		beams int
		want  string
	}{{1, greedyCaption}, {3, beamCaption}, {2, beamCaption}} {
		seq, err := florenceGeneration(tc.beams).search(context.Background(), carScript().step)
		if err != nil {
			t.Fatal(err)
		}
		if key(seq) != tc.want {
			t.Errorf("%d beams: %v, want %s", tc.beams, seq, tc.want)
		}
	}
}

// TestBeamSearchNeedsParents shows that the parents the search reports are load-bearing: a cache
// that ignores them (every row keeps its own history) derails beam search.
func TestBeamSearchNeedsParents(t *testing.T) {
	lm := carScript()
	ignoring := func(ctx context.Context, tokens []int64, _ []int) ([][]float32, error) {
		return lm.step(ctx, tokens, nil)
	}
	seq, err := florenceGeneration(3).search(context.Background(), ignoring)
	if err != nil {
		t.Fatal(err)
	}
	if key(seq) == beamCaption {
		t.Fatalf("beam search found %v with a cache that ignores the beams' parents", seq)
	}
}

func TestNoRepeatNgram(t *testing.T) {
	// A model that always prefers "car", then "truck", then the end.
	loop := func() *scriptLM {
		return &scriptLM{vocab: 12, next: map[string]map[int64]float32{}, fallback: map[int64]float32{tCar: 10, tTruck: 5, tEOS: 0}}
	}
	g := generation{Beams: 1, MaxNew: 10, NoRepeat: 2, Start: 2, EOS: 2, ForcedBOS: -1, ForcedEOS: -1}
	seq, err := g.search(context.Background(), loop().step)
	if err != nil {
		t.Fatal(err)
	}
	// 5 5 is allowed once; then 5 may not follow 5 again, 6 may not follow 5 twice, and only the
	// end is left.
	if want := []int64{2, 5, 5, 6, 5}; !slices.Equal(seq, want) {
		t.Errorf("no_repeat_ngram_size 2: %v, want %v", seq, want)
	}
	g.NoRepeat = 0
	if seq, _ := g.search(context.Background(), loop().step); len(seq) != 11 || seq[10] != tCar {
		t.Errorf("without no_repeat_ngram_size: %v, want the start and ten repeats of %d", seq, tCar)
	}
}

func TestLengthLimitForcesEOS(t *testing.T) {
	for _, beams := range []int{1, 3} {
		lm := &scriptLM{vocab: 12, next: map[string]map[int64]float32{}, fallback: map[int64]float32{tCar: 10, tTruck: 9, tRed: 8, tDot: 7}}
		g := generation{Beams: beams, MaxNew: 4, Start: 2, EOS: 2, ForcedBOS: 0, ForcedEOS: 2, LengthPenalty: 1, EarlyStopping: true}
		seq, err := g.search(context.Background(), lm.step)
		if err != nil {
			t.Fatal(err)
		}
		if len(seq) > 4 || seq[0] != 2 || seq[1] != tBOS {
			t.Errorf("%d beams: %v, want the start, the forced <s> and at most 2 more before the forced end", beams, seq)
		}
		if lm.steps > 4 {
			t.Errorf("%d beams: %d decoder steps for 4 new tokens", beams, lm.steps)
		}
	}
}

func TestHalfPrecision(t *testing.T) {
	for _, v := range []float32{0, 1, -2.5, 65504, 1e-7, 6.1e-5, 0.1, 3.14159, -1e-3} {
		got := fromHalf(toHalf(v))
		tol := max(abs32(v)/1024, 6e-8) // half an ulp of 11 bits, or the smallest subnormal
		if abs32(got-v) > tol {
			t.Errorf("%g round-trips to %g", v, got)
		}
	}
	if h := toHalf(1e6); h != 0x7c00 {
		t.Errorf("1e6 is %#x in half precision, want +Inf 0x7c00", h)
	}
	// 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1).
	if h := toHalf(1 + 1.0/2048); h != 0x3c00 {
		t.Errorf("1+2^-11 rounds to %#x, want 0x3c00", h)
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
