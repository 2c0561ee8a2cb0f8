package caption

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// generation holds the decoding settings of generation_config.json, as Hugging Face's generate
// applies them to an encoder-decoder model.
type generation struct {
	// Beams is the beam width; 1 decodes greedily.
	Beams int
	// MaxNew is the most tokens generated after the start token.
	MaxNew int
	// NoRepeat forbids repeating any n-gram of this size; 0 allows repeats.
	NoRepeat int
	// Start is decoder_start_token_id; EOS ends a sequence.
	Start, EOS int64
	// ForcedBOS, when not negative, is the only token allowed first; ForcedEOS, when not
	// negative, the only one allowed when the length limit is reached.
	ForcedBOS, ForcedEOS int64
	// LengthPenalty divides a finished beam's log-probability by its length to this power.
	LengthPenalty float64
	// EarlyStopping ends beam search as soon as Beams sequences have finished.
	EarlyStopping bool
}

// stepFunc runs the decoder one step. Row i of the batch continues the sequence that was row
// parents[i] before this step (nil: row i) and appends tokens[i]; it returns each row's logits.
type stepFunc func(ctx context.Context, tokens []int64, parents []int) ([][]float32, error)

// search generates one sequence, the start token first, and returns it without the EOS.
func (g generation) search(ctx context.Context, step stepFunc) ([]int64, error) {
	if g.Beams <= 1 {
		return g.greedy(ctx, step)
	}
	return g.beam(ctx, step)
}

// maxLen is the longest sequence, start token included, as generate's max_length counts.
func (g generation) maxLen() int { return 1 + g.MaxNew }

// constrain applies the logits processors to one row's scores: forced first and last tokens, and
// banned repeats. seq is the row's sequence so far.
func (g generation) constrain(scores []float32, seq []int64) {
	force := int64(-1)
	switch {
	case len(seq) == 1 && g.ForcedBOS >= 0:
		force = g.ForcedBOS
	case len(seq) == g.maxLen()-1 && g.ForcedEOS >= 0:
		force = g.ForcedEOS
	}
	if force >= 0 && force < int64(len(scores)) {
		for i := range scores {
			if int64(i) != force {
				scores[i] = float32(math.Inf(-1))
			}
		}
		return
	}
	for _, t := range g.banned(seq) {
		if t >= 0 && t < int64(len(scores)) {
			scores[t] = float32(math.Inf(-1))
		}
	}
}

// banned lists the tokens that would complete an n-gram already in seq.
func (g generation) banned(seq []int64) []int64 {
	n := g.NoRepeat
	if n <= 0 || len(seq)+1 < n {
		return nil
	}
	prefix := seq[len(seq)-n+1:]
	var out []int64
	for i := 0; i+n <= len(seq); i++ {
		if equal(seq[i:i+n-1], prefix) {
			out = append(out, seq[i+n-1])
		}
	}
	return out
}

func equal(a, b []int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func (g generation) greedy(ctx context.Context, step stepFunc) ([]int64, error) {
	seq := []int64{g.Start}
	for len(seq) < g.maxLen() {
		logits, err := step(ctx, seq[len(seq)-1:], nil)
		if err != nil {
			return nil, err
		}
		scores := logits[0]
		g.constrain(scores, seq)
		best := 0
		for i, s := range scores {
			if s > scores[best] {
				best = i
			}
		}
		if int64(best) == g.EOS {
			break
		}
		seq = append(seq, int64(best))
	}
	return seq, nil
}

// hypothesis is a finished beam.
type hypothesis struct {
	seq   []int64
	score float64 // length-normalised log-probability
}

// beam is Hugging Face's beam search for one input: each step keeps the Beams best unfinished
// sequences among 2·Beams candidates, a candidate ending in EOS within the top Beams finishes,
// and the best finished sequence by length-normalised score wins.
func (g generation) beam(ctx context.Context, step stepFunc) ([]int64, error) {
	k := g.Beams
	seqs := make([][]int64, k)
	scores := make([]float64, k)
	for i := range seqs {
		seqs[i] = []int64{g.Start}
		// All rows start identical; only the first may expand, or the beam would fill with copies.
		if i > 0 {
			scores[i] = -1e9
		}
	}
	tokens := make([]int64, k)
	for i := range tokens {
		tokens[i] = g.Start
	}
	var parents []int
	var done []hypothesis
	finish := func(seq []int64, logp float64) {
		// The start token is the prompt, not generated, as generate counts length.
		n := max(1, len(seq)-1)
		h := hypothesis{seq: seq, score: logp / math.Pow(float64(n), g.LengthPenalty)}
		done = append(done, h)
		sort.SliceStable(done, func(i, j int) bool { return done[i].score > done[j].score })
		if len(done) > k {
			done = done[:k]
		}
	}
	type candidate struct {
		score float64
		row   int
		token int64
	}
	for {
		logits, err := step(ctx, tokens, parents)
		if err != nil {
			return nil, err
		}
		if len(logits) != k {
			return nil, fmt.Errorf("decoder returned %d rows for %d beams", len(logits), k)
		}
		var cands []candidate
		for row, l := range logits {
			lp := logSoftmax(l)
			g.constrain(lp, seqs[row])
			for _, t := range topK(lp, 2*k) {
				cands = append(cands, candidate{scores[row] + float64(lp[t]), row, int64(t)})
			}
		}
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
		cands = cands[:min(len(cands), 2*k)]
		nextSeqs := make([][]int64, 0, k)
		nextScores := make([]float64, 0, k)
		nextParents := make([]int, 0, k)
		nextTokens := make([]int64, 0, k)
		for rank, c := range cands {
			if math.IsInf(c.score, -1) {
				break
			}
			if c.token == g.EOS {
				if rank < k {
					finish(append([]int64(nil), seqs[c.row]...), c.score)
				}
				continue
			}
			nextSeqs = append(nextSeqs, append(append([]int64(nil), seqs[c.row]...), c.token))
			nextScores = append(nextScores, c.score)
			nextParents = append(nextParents, c.row)
			nextTokens = append(nextTokens, c.token)
			if len(nextSeqs) == k {
				break
			}
		}
		if len(nextSeqs) < k {
			// Every candidate was banned or finished: nothing left to extend.
			break
		}
		seqs, scores, parents, tokens = nextSeqs, nextScores, nextParents, nextTokens
		if len(done) >= k && g.EarlyStopping {
			return done[0].seq, nil
		}
		if len(seqs[0]) >= g.maxLen() {
			break
		}
	}
	// Out of length: unfinished beams compete with the finished ones.
	for i := range seqs {
		if len(seqs[i]) > 0 {
			finish(seqs[i], scores[i])
		}
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("beam search produced no sequence")
	}
	return done[0].seq, nil
}

// logSoftmax returns log-probabilities of logits, in place.
func logSoftmax(logits []float32) []float32 {
	m := float32(math.Inf(-1))
	for _, v := range logits {
		m = max(m, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - m))
	}
	lse := m + float32(math.Log(sum))
	for i := range logits {
		logits[i] -= lse
	}
	return logits
}

// topK returns the indices of the k largest values, largest first.
func topK(v []float32, k int) []int {
	idx := make([]int, 0, k+1)
	for i, x := range v {
		if len(idx) == k && x <= v[idx[k-1]] {
			continue
		}
		at := sort.Search(len(idx), func(j int) bool { return v[idx[j]] < x })
		idx = append(idx, 0)
		copy(idx[at+1:], idx[at:])
		idx[at] = i
		if len(idx) > k {
			idx = idx[:k]
		}
	}
	return idx
}
