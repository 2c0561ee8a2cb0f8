package bpe

import (
	"strings"
	"unicode/utf8"
)

// Decode turns ids back into text: it joins the bytes the tokens stand for and reads them as
// UTF-8, each ill-formed sequence becoming U+FFFD. skipSpecial drops special added tokens (<s>,
// </s>, <pad>, task and <loc_N> tokens…), as skip_special_tokens does. Ids outside the
// vocabulary are skipped. When tokenizer_config.json asks for it, transformers' clean-up of
// spaces before punctuation and contractions follows.
func (t *Tokenizer) Decode(ids []int64, skipSpecial bool) string {
	var b []byte
	for _, id := range ids {
		if id < 0 || id >= int64(len(t.pieces)) || skipSpecial && t.special[id] {
			continue
		}
		b = append(b, t.pieces[id]...)
	}
	s := lossy(b)
	if t.cleanUp {
		s = cleanUp(s)
	}
	return s
}

// byteRunes is GPT-2's byte-level alphabet: the rune each byte is spelled with in the vocab.
// Printable Latin-1 bytes stand for themselves; the rest (controls, space, DEL, NBSP, soft
// hyphen) move to U+0100 onwards, so that every token is visible text.
var byteRunes = func() [256]rune {
	var runes [256]rune
	next := rune(0x100)
	for b := range runes {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			runes[b] = rune(b)
		} else {
			runes[b] = next
			next++
		}
	}
	return runes
}()

// tokenBytes returns the bytes a token spelled in the byte-level alphabet stands for. A token
// with a rune outside it (an added token may have one) stands for its own UTF-8, as in Hugging
// Face's ByteLevel decoder.
func tokenBytes(tok string, runeByte map[rune]byte) []byte {
	b := make([]byte, 0, len(tok))
	for _, r := range tok {
		c, ok := runeByte[r]
		if !ok {
			return []byte(tok)
		}
		b = append(b, c)
	}
	return b
}

// lossy converts b to a string replacing each maximal ill-formed subsequence with one U+FFFD,
// as Rust's String::from_utf8_lossy in the Hugging Face decoder does. Go's strings.ToValidUTF8
// would fold a whole run of bad bytes into one U+FFFD instead.
func lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			n = illFormedLen(b)
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// illFormedLen returns the length of the ill-formed sequence b starts with: a lead byte and the
// continuation bytes after it that could still have made a valid character (Unicode's "maximal
// subpart"), or just the one byte.
func illFormedLen(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF) // the range of the second byte
	var need int                     // continuation bytes the lead byte calls for
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0 // no overlong forms
	case c == 0xED:
		need, hi = 2, 0x9F // no surrogates
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90 // no overlong forms
	case c == 0xF4:
		need, hi = 3, 0x8F // nothing past U+10FFFF
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(b) && b[n] >= lo && b[n] <= hi {
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}

// cleanUps are transformers' clean_up_tokenization replacements, applied one after another in
// this order.
var cleanUps = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

func cleanUp(s string) string {
	for _, c := range cleanUps {
		s = strings.ReplaceAll(s, c[0], c[1])
	}
	return s
}
