package embed_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/embed"
)

func realTokenizer(t testing.TB) *embed.Tokenizer {
	t.Helper()
	tok, err := embed.LoadTokenizer(sharedtest.File(t, "models", "all-MiniLM-L6-v2", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func tinyTokenizer(t testing.TB) *embed.Tokenizer {
	t.Helper()
	tok, err := embed.LoadTokenizer(filepath.Join("testdata", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// encodeCases hold ids looked up in all-MiniLM-L6-v2's vocab.txt: a token's id is its line number
// minus one (grep -nxF -- TOKEN vocab.txt), so [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103.
// Normalisation was worked by hand from BertNormalizer's rules; a word missing from the vocabulary
// was split greedily, longest prefix first, the rest looked up with "##" (unbelievably: un,
// ##bel, ##ie, ##va, ##bly), and a word with a part no piece matches is [UNK].
var encodeCases = []struct {
	name string
	text string
	max  int
	ids  []int64
}{
	{"accents stripped", "Café naïve", 256, []int64{101, 7668, 15743, 102}},
	{"accents and cedilla", "Ölçüm", 256, []int64{101, 19330, 24894, 102}},                // ol ##cum
	{"dotted capital I", "İstanbul", 256, []int64{101, 9960, 102}},                        // NFD drops U+0307
	{"sharp s kept", "Straße", 256, []int64{101, 2358, 27807, 102}},                       // st ##raße
	{"ascii punctuation", "Hello, world!", 256, []int64{101, 7592, 1010, 2088, 999, 102}}, // hello , world !
	{"apostrophe", "don't", 256, []int64{101, 2123, 1005, 1056, 102}},                     // don ' t
	{"ascii symbols split", "$100+tax", 256, []int64{101, 1002, 2531, 1009, 4171, 102}},   // $ 100 + tax
	{"hyphen", "e-mail", 256, []int64{101, 1041, 1011, 5653, 102}},                        // e - mail
	{"unicode punctuation", "“quoted” — dash…", 256, []int64{101, 1523, 9339, 1524, 1517, 11454, 1529, 102}},
	{"digits and time", "Gate 3 opened at 10:45pm", 256, []int64{101, 4796, 1017, 2441, 2012, 2184, 1024, 3429, 9737, 102}},
	{"mixed case", "The QUICK Brown fox", 256, []int64{101, 1996, 4248, 2829, 4419, 102}},
	{"subwords", "unbelievably", 256, []int64{101, 4895, 8671, 2666, 3567, 6321, 102}},
	{"CJK outside vocabulary", "监控摄像头", 256, []int64{101, 100, 100, 100, 100, 100, 102}},
	{"CJK split per character", "中国人", 256, []int64{101, 1746, 1799, 1756, 102}}, // not 中 ##国 ##人
	{"CJK with fullwidth punctuation", "你好！", 256, []int64{101, 100, 100, 1986, 102}},
	{"kana is one word", "カメラ", 256, []int64{101, 1700, 30252, 30257, 102}}, // カ ##メ ##ラ
	{"emoji", "person 🙂 walking", 256, []int64{101, 2711, 100, 3788, 102}},
	{"control and format characters", "a\tb\nc\u200bd\x00\ufffd", 256, []int64{101, 1037, 1038, 3729, 102}}, // a b cd
	{"added token matched verbatim", "[MASK] parked", 256, []int64{101, 103, 9083, 102}},
	{"empty", "", 256, []int64{101, 102}},
	{"whitespace only", " \t\r\n ", 256, []int64{101, 102}},
	{"word over 100 characters", strings.Repeat("a", 101), 256, []int64{101, 100, 102}},
	{"very long input truncated", strings.Repeat("person walking ", 300), 8, []int64{101, 2711, 3788, 2711, 3788, 2711, 3788, 102}},
	{"max length below 2", "person", 0, []int64{101, 102}},
}

func TestEncode(t *testing.T) {
	tok := realTokenizer(t)
	for _, c := range encodeCases {
		t.Run(c.name, func(t *testing.T) {
			ids, mask, types := tok.Encode(c.text, c.max)
			if !slices.Equal(ids, c.ids) {
				t.Fatalf("Encode(%q) = %v, want %v", c.text, ids, c.ids)
			}
			if len(mask) != len(ids) || len(types) != len(ids) {
				t.Fatalf("mask %v, types %v for %d ids", mask, types, len(ids))
			}
			for i := range ids {
				if mask[i] != 1 || types[i] != 0 {
					t.Fatalf("mask %v, types %v: want ones and zeros", mask, types)
				}
			}
		})
	}
}

func TestEncodeTinyVocabulary(t *testing.T) {
	tok := tinyTokenizer(t)
	// testdata/tokenizer.json: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, then the words of
	// gen_tiny_model.py from 5 (a 5, the 6, man 7, ... walk 20, ##ing 21, ##s 22, "," 23, ...).
	ids, _, _ := tok.Encode("The man, WALKING!", 16)
	if want := []int64{2, 6, 7, 23, 20, 21, 25, 3}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	if n := tok.VocabSize(); n != 28 {
		t.Fatalf("vocabulary size %d, want 28", n)
	}
}

func TestLoadTokenizerRejects(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not json":      `{`,
		"not wordpiece": `{"model": {"type": "BPE", "vocab": {"a": 0}}}`,
		"no unk":        `{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "BertPreTokenizer"}}`,
		"other normaliser": `{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}},
			"normalizer": {"type": "NFKC"}, "pre_tokenizer": {"type": "BertPreTokenizer"}}`,
		"no template": `{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0}},
			"pre_tokenizer": {"type": "BertPreTokenizer"}}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := embed.LoadTokenizer(p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := embed.LoadTokenizer(filepath.Join(dir, "absent.json")); err == nil {
		t.Error("absent file: loaded")
	}
}

// FuzzEncode checks that any text and length gives [CLS] ... [SEP] within the length, with ids in
// the vocabulary, and that truncation keeps a prefix of the full encoding.
func FuzzEncode(f *testing.F) {
	for _, c := range encodeCases {
		f.Add(c.text, c.max)
	}
	f.Add("\xff\xfe invalid utf-8 \xc3", 5)
	f.Add("[CLS][SEP][UNK", -3)
	tok := tinyTokenizer(f)
	if _, err := os.Stat(filepath.Join(configs.SharedDir(), "models", "all-MiniLM-L6-v2", "tokenizer.json")); err == nil {
		tok = realTokenizer(f)
	}
	f.Fuzz(func(t *testing.T, text string, maxLen int) {
		ids, mask, types := tok.Encode(text, maxLen)
		limit := max(maxLen, 2)
		if len(ids) < 2 || len(ids) > limit || len(mask) != len(ids) || len(types) != len(ids) {
			t.Fatalf("Encode(%q, %d): %d ids, %d mask, %d types", text, maxLen, len(ids), len(mask), len(types))
		}
		full, _, _ := tok.Encode(text, 4*len(text)+2)
		if ids[0] != full[0] || ids[len(ids)-1] != full[len(full)-1] || !slices.Equal(ids[:len(ids)-1], full[:len(ids)-1]) {
			t.Fatalf("Encode(%q, %d) = %v is not [CLS] + a prefix of %v + [SEP]", text, maxLen, ids, full)
		}
		for _, id := range ids {
			if id < 0 || id >= int64(tok.VocabSize()) {
				t.Fatalf("Encode(%q): id %d outside the vocabulary of %d", text, id, tok.VocabSize())
			}
		}
	})
}
