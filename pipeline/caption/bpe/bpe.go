// Package bpe is Florence-2's text tokenizer: the byte-level BPE of BART (the GPT-2/RoBERTa
// scheme) plus Florence-2's added task tokens, read from the model's Hugging Face
// tokenizer.json. It encodes prompts as "<s> … </s>" and decodes generated ids back to text the
// way transformers' BartTokenizerFast does.
package bpe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Tokenizer encodes and decodes text for Florence-2. It is read-only after Load apart from an
// internal, locked cache, so it is safe for concurrent use.
type Tokenizer struct {
	vocab     map[string]int64      // BPE vocabulary
	merges    map[pair]merge        // merge rules by the ids they join
	byteID    [256]int32            // the vocabulary id of each single byte
	added     map[string]addedToken // added tokens by content
	addedLens [256][]int            // lengths of the added tokens starting with a byte, longest first
	pieces    [][]byte              // the bytes each id decodes to; nil for an unused id
	special   []bool                // ids that Decode drops when skipping special tokens
	cls, sep  int64
	cleanUp   bool // transformers' clean_up_tokenization_spaces

	mu    sync.RWMutex
	cache map[string][]int64 // BPE of words already seen
}

// pair is two adjacent symbols, by vocabulary id.
type pair struct{ left, right int32 }

// merge is what a pair becomes: rank is its line in merges (lower merges first), id the joined
// symbol.
type merge struct{ rank, id int32 }

// addedToken is an entry of added_tokens.
type addedToken struct {
	id             int64
	lstrip, rstrip bool
}

// tokenizerFile is the part of tokenizer.json the tokenizer reads.
type tokenizerFile struct {
	AddedTokens []struct {
		ID         int64  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Special    bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer *struct {
		Type           string `json:"type"`
		AddPrefixSpace bool   `json:"add_prefix_space"`
		UseRegex       bool   `json:"use_regex"`
	} `json:"pre_tokenizer"`
	PostProcessor *struct {
		Type string       `json:"type"`
		Cls  specialToken `json:"cls"`
		Sep  specialToken `json:"sep"`
	} `json:"post_processor"`
	Decoder *struct {
		Type string `json:"type"`
	} `json:"decoder"`
	Model struct {
		Type    string           `json:"type"`
		Vocab   map[string]int64 `json:"vocab"`
		Merges  []string         `json:"merges"`
		Dropout *float64         `json:"dropout"`
	} `json:"model"`
}

// specialToken is a post_processor entry, written as a [token, id] array.
type specialToken struct {
	token string
	id    int64
}

// UnmarshalJSON decodes the array straight into the fields: encoding/json fills the pointers a
// slice already holds instead of replacing them.
func (s *specialToken) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, &[]any{&s.token, &s.id})
}

// maxCached bounds the word cache, as the Hugging Face BPE bounds its own; words past it are
// still encoded, just not remembered.
const maxCached = 10000

// maxCachedLen keeps long words, rare in captions, from pinning memory in the cache.
const maxCachedLen = 64

// Load reads a tokenizer.json, and clean_up_tokenization_spaces from the tokenizer_config.json
// beside it (off when that file is absent). A file describing any other pipeline than
// Florence-2's (a normalizer, another pre-tokenizer, model, post-processor or decoder, BPE
// dropout, single_word added tokens) is an error rather than a silently different tokenization.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	var f tokenizerFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("bpe: %s: %w", path, err)
	}
	t, err := build(&f)
	if err != nil {
		return nil, fmt.Errorf("bpe: %s: %w", path, err)
	}
	config := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	if t.cleanUp, err = readCleanUp(config); err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	return t, nil
}

// supported says why f is not the pipeline this package implements, or nil.
func (f *tokenizerFile) supported() error {
	switch {
	case len(f.Normalizer) > 0 && string(f.Normalizer) != "null":
		return errors.New("a normalizer is not supported")
	case f.PreTokenizer == nil || f.PreTokenizer.Type != "ByteLevel" ||
		f.PreTokenizer.AddPrefixSpace || !f.PreTokenizer.UseRegex:
		return errors.New("only a ByteLevel pre-tokenizer using the regex, without prefix space, is supported")
	case f.Model.Type != "BPE" || f.Model.Dropout != nil:
		return errors.New("only a BPE model without dropout is supported")
	case f.PostProcessor == nil || f.PostProcessor.Type != "RobertaProcessing":
		return errors.New("only the RobertaProcessing post-processor is supported")
	case f.Decoder == nil || f.Decoder.Type != "ByteLevel":
		return errors.New("only the ByteLevel decoder is supported")
	}
	for _, a := range f.AddedTokens {
		if a.SingleWord {
			return fmt.Errorf("added token %q: single_word is not supported", a.Content)
		}
	}
	return nil
}

// build makes the tokenizer f describes.
func build(f *tokenizerFile) (*Tokenizer, error) {
	if err := f.supported(); err != nil {
		return nil, err
	}
	// Ids index slices and fit the int32 merge tables.
	size := int64(0)
	for tok, id := range f.Model.Vocab {
		if id < 0 || id > math.MaxInt32 {
			return nil, fmt.Errorf("token %q has id %d", tok, id)
		}
		size = max(size, id+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.ID > math.MaxInt32 {
			return nil, fmt.Errorf("added token %q has id %d", a.Content, a.ID)
		}
		size = max(size, a.ID+1)
	}
	t := &Tokenizer{
		vocab:   f.Model.Vocab,
		merges:  make(map[pair]merge, len(f.Model.Merges)),
		added:   make(map[string]addedToken, len(f.AddedTokens)),
		pieces:  make([][]byte, size),
		special: make([]bool, size),
		cls:     f.PostProcessor.Cls.id,
		sep:     f.PostProcessor.Sep.id,
		cache:   make(map[string][]int64),
	}
	runeByte := make(map[rune]byte, 256)
	for b, r := range byteRunes {
		runeByte[r] = byte(b)
		id, ok := t.vocab[string(r)]
		if !ok {
			return nil, fmt.Errorf("vocab lacks the symbol %q for byte %#x", r, b)
		}
		t.byteID[b] = int32(id)
	}
	for tok, id := range t.vocab {
		t.pieces[id] = tokenBytes(tok, runeByte)
	}
	for rank, m := range f.Model.Merges {
		left, right, ok := strings.Cut(m, " ")
		l, lok := t.vocab[left]
		r, rok := t.vocab[right]
		joined, jok := t.vocab[left+right]
		if !ok || !lok || !rok || !jok {
			return nil, fmt.Errorf("merge %d %q joins tokens missing from the vocab", rank, m)
		}
		t.merges[pair{int32(l), int32(r)}] = merge{int32(rank), int32(joined)}
	}
	for _, a := range f.AddedTokens {
		if a.Content == "" {
			return nil, fmt.Errorf("added token %d is empty", a.ID)
		}
		t.added[a.Content] = addedToken{id: a.ID, lstrip: a.LStrip, rstrip: a.RStrip}
		t.pieces[a.ID] = tokenBytes(a.Content, runeByte)
		t.special[a.ID] = a.Special
	}
	for tok := range t.added {
		t.addedLens[tok[0]] = append(t.addedLens[tok[0]], len(tok))
	}
	// Trying the longest first makes the match leftmost-longest, as Hugging Face's is.
	for b, lens := range t.addedLens {
		slices.Sort(lens)
		lens = slices.Compact(lens)
		slices.Reverse(lens)
		t.addedLens[b] = lens
	}
	for _, id := range []int64{t.cls, t.sep} {
		if id < 0 || id >= size {
			return nil, fmt.Errorf("post_processor id %d is not in the vocab", id)
		}
	}
	return t, nil
}

// readCleanUp reads clean_up_tokenization_spaces; transformers' default is off.
func readCleanUp(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var c struct {
		CleanUp bool `json:"clean_up_tokenization_spaces"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return c.CleanUp, nil
}

// ID returns a token's id: an added token's content or a vocabulary entry in its byte-level
// spelling (" the" is "Ġthe").
func (t *Tokenizer) ID(token string) (int64, bool) {
	if a, ok := t.added[token]; ok {
		return a.id, true
	}
	id, ok := t.vocab[token]
	return id, ok
}

// VocabSize is the number of ids, the highest id + 1: 51289 for Florence-2, the size of the
// decoder's logits.
func (t *Tokenizer) VocabSize() int {
	return len(t.pieces)
}
