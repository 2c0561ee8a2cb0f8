package embed

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer is a BERT WordPiece tokenizer configured by a Hugging Face tokenizer.json: the
// BertNormalizer, the BertPreTokenizer, the WordPiece model and the "[CLS] $A [SEP]" template.
// It is safe for concurrent use.
type Tokenizer struct {
	cleanText, chineseChars, stripAccents, lowercase bool

	words      map[string]int64 // word-initial pieces
	suffixes   map[string]int64 // "##" pieces, keyed without the prefix
	special    []string         // added tokens, matched verbatim in the raw text
	specialIDs map[string]int64 // added tokens' ids
	size       int
	maxChars   int
	unk        int64
	cls, sep   int64
}

// tokenizerFile is the part of tokenizer.json the tokenizer reads.
type tokenizerFile struct {
	AddedTokens []struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type         string `json:"type"`
		CleanText    bool   `json:"clean_text"`
		ChineseChars bool   `json:"handle_chinese_chars"`
		StripAccents *bool  `json:"strip_accents"`
		Lowercase    bool   `json:"lowercase"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	PostProcessor *struct {
		Type   string `json:"type"`
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int64 `json:"ids"`
		} `json:"special_tokens"`
	} `json:"post_processor"`
	Model struct {
		Type          string           `json:"type"`
		Vocab         map[string]int64 `json:"vocab"`
		UnkToken      string           `json:"unk_token"`
		Prefix        string           `json:"continuing_subword_prefix"`
		MaxInputChars int              `json:"max_input_chars_per_word"`
	} `json:"model"`
}

// LoadTokenizer reads a BERT tokenizer.json; any other normaliser, pre-tokeniser, model or
// template is an error rather than a silently different tokenisation.
func LoadTokenizer(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var f tokenizerFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	t, err := newTokenizer(&f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

func newTokenizer(f *tokenizerFile) (*Tokenizer, error) {
	m := f.Model
	if m.Type != "WordPiece" || len(m.Vocab) == 0 {
		return nil, fmt.Errorf("model %q with %d tokens is not a WordPiece vocabulary", m.Type, len(m.Vocab))
	}
	if m.Prefix == "" {
		m.Prefix = "##"
	}
	if m.MaxInputChars <= 0 {
		m.MaxInputChars = 100
	}
	t := &Tokenizer{
		words:      make(map[string]int64, len(m.Vocab)),
		suffixes:   make(map[string]int64),
		specialIDs: make(map[string]int64),
		maxChars:   m.MaxInputChars,
	}
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("token %q has negative id %d", tok, id)
		}
		t.size = max(t.size, int(id)+1)
		if rest, ok := strings.CutPrefix(tok, m.Prefix); ok && rest != "" {
			t.suffixes[rest] = id
		} else {
			t.words[tok] = id
		}
	}
	var ok bool
	if t.unk, ok = m.Vocab[m.UnkToken]; !ok {
		return nil, fmt.Errorf("unknown token %q is not in the vocabulary", m.UnkToken)
	}
	for _, a := range f.AddedTokens {
		if a.Content == "" || a.ID < 0 || int(a.ID) >= t.size {
			return nil, fmt.Errorf("added token %q has id %d outside the vocabulary", a.Content, a.ID)
		}
		t.special = append(t.special, a.Content)
		t.specialIDs[a.Content] = a.ID
	}
	if n := f.Normalizer; n != nil {
		if n.Type != "BertNormalizer" {
			return nil, fmt.Errorf("normalizer %q is not BertNormalizer", n.Type)
		}
		t.cleanText, t.chineseChars, t.lowercase = n.CleanText, n.ChineseChars, n.Lowercase
		// An unset strip_accents follows lowercase, as in BERT's uncased models.
		t.stripAccents = n.Lowercase
		if n.StripAccents != nil {
			t.stripAccents = *n.StripAccents
		}
	}
	if p := f.PreTokenizer; p == nil || p.Type != "BertPreTokenizer" {
		return nil, fmt.Errorf("pre_tokenizer is not BertPreTokenizer")
	}
	var err error
	if t.cls, t.sep, err = template(f); err != nil {
		return nil, err
	}
	return t, nil
}

// template returns the ids of the special tokens around a single sequence, which must be
// "[CLS] $A [SEP]" (by whatever names the file gives them).
func template(f *tokenizerFile) (cls, sep int64, err error) {
	p := f.PostProcessor
	if p == nil || p.Type != "TemplateProcessing" || len(p.Single) != 3 ||
		p.Single[0].SpecialToken == nil || p.Single[1].Sequence == nil || p.Single[2].SpecialToken == nil {
		return 0, 0, fmt.Errorf("post_processor is not a TemplateProcessing of the form [CLS] $A [SEP]")
	}
	id := func(name string) (int64, error) {
		ids := p.SpecialTokens[name].IDs
		if len(ids) != 1 {
			return 0, fmt.Errorf("post_processor special token %q has ids %v, want one", name, ids)
		}
		return ids[0], nil
	}
	if cls, err = id(p.Single[0].SpecialToken.ID); err != nil {
		return 0, 0, err
	}
	if sep, err = id(p.Single[2].SpecialToken.ID); err != nil {
		return 0, 0, err
	}
	return cls, sep, nil
}

// VocabSize is one more than the largest token id.
func (t *Tokenizer) VocabSize() int { return t.size }

// Encode tokenises text into [CLS] tokens [SEP], keeping at most maxLen ids (the tokens are
// truncated, [SEP] stays last; a maxLen below 2 is taken as 2). The mask is all ones and the token
// types all zeros: padding is the caller's business.
func (t *Tokenizer) Encode(text string, maxLen int) (ids, mask, types []int64) {
	maxLen = max(maxLen, 2)
	ids = append(make([]int64, 0, min(maxLen, len(text)+2)), t.cls)
	budget := maxLen - 1
	t.tokenize(text, func(id int64) bool {
		if len(ids) == budget {
			return false
		}
		ids = append(ids, id)
		return true
	})
	ids = append(ids, t.sep)
	mask = make([]int64, len(ids))
	for i := range mask {
		mask[i] = 1
	}
	return ids, mask, make([]int64, len(ids))
}

// tokenize calls emit with each token id of text until emit returns false.
func (t *Tokenizer) tokenize(text string, emit func(int64) bool) {
	for text != "" {
		at, tok := t.nextSpecial(text)
		if !t.tokenizeSpan(text[:at], emit) {
			return
		}
		if tok == "" {
			return
		}
		if !emit(t.specialIDs[tok]) {
			return
		}
		text = text[at+len(tok):]
	}
}

// nextSpecial finds the leftmost, then longest, added token in text; it returns len(text) and ""
// when there is none. Added tokens are matched before normalisation, as Hugging Face does.
func (t *Tokenizer) nextSpecial(text string) (int, string) {
	best, bestTok := len(text), ""
	for _, tok := range t.special {
		i := strings.Index(text[:min(len(text), best+len(tok))], tok)
		if i < 0 {
			continue
		}
		if i < best || (i == best && len(tok) > len(bestTok)) {
			best, bestTok = i, tok
		}
	}
	return best, bestTok
}

// tokenizeSpan normalises, pre-tokenises and WordPiece-encodes text free of added tokens.
func (t *Tokenizer) tokenizeSpan(text string, emit func(int64) bool) bool {
	for _, word := range strings.Fields(t.normalize(text)) {
		for word != "" {
			// BertPreTokenizer isolates every punctuation character as a word of its own.
			i := strings.IndexFunc(word, isPunct)
			if i < 0 {
				i = len(word)
			} else if i == 0 {
				_, size := utf8.DecodeRuneInString(word)
				i = size
			}
			if !t.wordPiece(word[:i], emit) {
				return false
			}
			word = word[i:]
		}
	}
	return true
}

// normalize applies BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase,
// in that order.
func (t *Tokenizer) normalize(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		switch {
		case t.cleanText && (r == 0 || r == utf8.RuneError || isControl(r)):
		case t.cleanText && unicode.IsSpace(r): // tab, newline, return and Unicode White_Space
			b.WriteByte(' ')
		case t.chineseChars && isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if !t.stripAccents && !t.lowercase {
		return s
	}
	if t.stripAccents {
		s = norm.NFD.String(s)
	}
	b.Reset()
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case t.stripAccents && unicode.Is(unicode.Mn, r):
		case t.lowercase && r == 'İ':
			// Its full lower-case mapping keeps the dot, as Rust's char::to_lowercase does.
			b.WriteString("i\u0307")
		case t.lowercase:
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// wordPiece emits the greedy longest-match-first pieces of word, or [UNK] when the word is too
// long or some part of it matches no piece.
func (t *Tokenizer) wordPiece(word string, emit func(int64) bool) bool {
	if utf8.RuneCountInString(word) > t.maxChars {
		return emit(t.unk)
	}
	var pieces []int64
	for start := 0; start < len(word); {
		vocab := t.words
		if start > 0 {
			vocab = t.suffixes
		}
		end, id, found := len(word), int64(0), false
		for end > start {
			if id, found = vocab[word[start:end]]; found {
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[:end])
			end -= size
		}
		if !found {
			return emit(t.unk)
		}
		pieces = append(pieces, id)
		start = end
	}
	for _, id := range pieces {
		if !emit(id) {
			return false
		}
	}
	return true
}

// isControl is Hugging Face's BERT control character: categories Cc, Cf and Co (its is_other),
// except tab, newline and carriage return, which count as whitespace.
func isControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// isPunct is BERT's punctuation: Unicode category P plus every ASCII non-alphanumeric symbol
// ($, +, <, =, >, ^, `, | and ~ are symbols, not punctuation, in Unicode).
func isPunct(r rune) bool {
	if r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126 {
		return true
	}
	return unicode.IsPunct(r)
}

// isCJK reports a CJK Unified Ideograph or Compatibility Ideograph in the blocks Hugging Face's
// BertNormalizer lists (its Extension E range starts at U+2B920 where Google's BERT has U+2B820;
// the Hugging Face one is what the exported models are used with). Hangul, kana and CJK
// punctuation are not included.
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF ||
		r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF ||
		r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F ||
		r >= 0x2B920 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF ||
		r >= 0x2F800 && r <= 0x2FA1F
}
