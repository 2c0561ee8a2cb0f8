package bpe

import (
	"container/heap"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Encode returns the ids of text between <s> and </s>, as RobertaProcessing frames a single
// sequence. Added tokens (task prompts, <loc_N>…) are matched literally first and never split;
// the rest is split into words by the GPT-2 pattern and each word's UTF-8 bytes are merged by
// BPE. Any string encodes, invalid UTF-8 included: its stray bytes become byte tokens.
func (t *Tokenizer) Encode(text string) []int64 {
	// A token covers about four bytes of English.
	ids := make([]int64, 1, len(text)/4+2)
	ids[0] = t.cls
	done := 0 // text[:done] is encoded
	for i := 0; i < len(text); {
		tok, n := t.addedAt(text[i:])
		if n == 0 {
			i++
			continue
		}
		start, end := i, i+n
		// lstrip and rstrip make the token swallow the whitespace beside it, never reaching back
		// into an earlier match.
		if tok.lstrip {
			start = done + len(strings.TrimRightFunc(text[done:start], unicode.IsSpace))
		}
		if tok.rstrip {
			end = len(text) - len(strings.TrimLeftFunc(text[end:], unicode.IsSpace))
		}
		ids = t.appendText(ids, text[done:start])
		ids = append(ids, tok.id)
		done, i = end, end
	}
	ids = t.appendText(ids, text[done:])
	return append(ids, t.sep)
}

// addedAt returns the longest added token s starts with, and its length, or 0. Hugging Face
// matches the added tokens that skip normalization before the others (<s>, <mask>…); with no
// normalizer, and no added token overlapping another as in Florence-2's "<…>" tokens, one
// leftmost-longest pass finds the same matches.
func (t *Tokenizer) addedAt(s string) (addedToken, int) {
	for _, n := range t.addedLens[s[0]] {
		if n <= len(s) {
			if tok, ok := t.added[s[:n]]; ok {
				return tok, n
			}
		}
	}
	return addedToken{}, 0
}

// appendText appends the ids of text that holds no added token.
func (t *Tokenizer) appendText(ids []int64, text string) []int64 {
	for text != "" {
		n := wordLen(text)
		ids = t.appendWord(ids, text[:n])
		text = text[n:]
	}
	return ids
}

// Character classes of the GPT-2 pattern.
const (
	space  = iota // \s
	letter        // \p{L}
	number        // \p{N}
	other         // [^\s\p{L}\p{N}], invalid UTF-8 included
)

func class(r rune) int {
	switch {
	case unicode.IsSpace(r): // Unicode White_Space, as the pattern's \s
		return space
	case unicode.IsLetter(r):
		return letter
	case unicode.IsNumber(r):
		return number
	}
	return other
}

// wordLen returns the length of the first word of non-empty s, splitting as the GPT-2 pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// does. It is written out because Go's regexp has neither the lookahead nor a Unicode \s.
func wordLen(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	if r == '\'' {
		for _, c := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
			if strings.HasPrefix(s[n:], c) {
				return n + len(c)
			}
		}
	}
	c, start := class(r), 0
	if r == ' ' && n < len(s) {
		// A single space joins the word that follows it.
		if next, _ := utf8.DecodeRuneInString(s[n:]); class(next) != space {
			c, start = class(next), n
		}
	}
	end := start + runLen(s[start:], c)
	if c != space || end == len(s) {
		return end
	}
	// \s+(?!\S) leaves the last space of a run for the word after it, unless the run is that
	// one space alone, which \s+ then takes.
	_, size := utf8.DecodeLastRuneInString(s[:end])
	if end-size > 0 {
		return end - size
	}
	return end
}

// runLen returns the length of the run of class c that s starts with.
func runLen(s string, c int) int {
	for i, r := range s {
		if class(r) != c {
			return i
		}
	}
	return len(s)
}

// appendWord appends the BPE ids of a pre-tokenized word, through the cache.
func (t *Tokenizer) appendWord(ids []int64, word string) []int64 {
	if len(word) == 1 {
		return append(ids, int64(t.byteID[word[0]]))
	}
	t.mu.RLock()
	cached, ok := t.cache[word]
	t.mu.RUnlock()
	if ok {
		return append(ids, cached...)
	}
	word = strings.Clone(word) // not to pin the caller's text from the cache
	merged := t.bpe(word)
	if len(word) <= maxCachedLen {
		t.mu.Lock()
		if len(t.cache) < maxCached {
			t.cache[word] = merged
		}
		t.mu.Unlock()
	}
	return append(ids, merged...)
}

// symbol is one piece of a word being merged, in a linked list so merges need no copying.
type symbol struct {
	id         int32 // -1 once merged into its left neighbour
	prev, next int   // -1 at either end
}

// candidate is a pair of symbols that a merge rule joins, queued by rank then position.
type candidate struct{ rank, pos int32 }

type queue []candidate

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	return q[i].rank < q[j].rank || q[i].rank == q[j].rank && q[i].pos < q[j].pos
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(candidate)) }
func (q *queue) Pop() any {
	c := (*q)[len(*q)-1]
	*q = (*q)[:len(*q)-1]
	return c
}

// bpe merges word's bytes, always joining the lowest-ranked pair and the leftmost of equals,
// as Hugging Face's BPE does. A queue keeps that O(n log n) in the word's length, so one long
// run of letters cannot stall Encode.
func (t *Tokenizer) bpe(word string) []int64 {
	syms := make([]symbol, len(word))
	for i := range syms {
		syms[i] = symbol{id: t.byteID[word[i]], prev: i - 1, next: i + 1}
	}
	syms[len(syms)-1].next = -1
	var q queue
	for i := range len(syms) - 1 {
		t.queuePair(&q, syms, i)
	}
	for q.Len() > 0 {
		c := heap.Pop(&q).(candidate)
		left := &syms[c.pos]
		if left.id < 0 || left.next < 0 {
			continue // merged away since it was queued
		}
		right := &syms[left.next]
		m, ok := t.merges[pair{left.id, right.id}]
		if !ok || m.rank != c.rank {
			continue // a neighbour has changed since it was queued
		}
		left.id, left.next, right.id = m.id, right.next, -1
		if left.next >= 0 {
			syms[left.next].prev = int(c.pos)
		}
		if left.prev >= 0 {
			t.queuePair(&q, syms, left.prev)
		}
		t.queuePair(&q, syms, int(c.pos))
	}
	var ids []int64
	for i := 0; i >= 0; i = syms[i].next {
		ids = append(ids, int64(syms[i].id))
	}
	return ids
}

// queuePair queues the pair starting at symbol i if a merge rule joins it.
func (t *Tokenizer) queuePair(q *queue, syms []symbol, i int) {
	next := syms[i].next
	if next < 0 {
		return
	}
	if m, ok := t.merges[pair{syms[i].id, syms[next].id}]; ok {
		heap.Push(q, candidate{m.rank, int32(i)})
	}
}
