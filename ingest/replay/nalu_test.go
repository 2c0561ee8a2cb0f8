package replay

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// Parameter sets and slices of the two codecs, as short as their headers allow.
var (
	sps264 = []byte{0x67, 0x42, 0xc0, 0x1e, 0xda}
	pps264 = []byte{0x68, 0xce, 0x3c, 0x80}
	idr264 = []byte{0x65, 0x88, 0x84, 0x00, 0x33}
	non264 = []byte{0x41, 0x9a, 0x24, 0x6c}
	aud264 = []byte{0x09, 0xf0}
	vps265 = []byte{0x40, 0x01, 0x0c, 0x01}
	sps265 = []byte{0x42, 0x01, 0x01, 0x01}
	pps265 = []byte{0x44, 0x01, 0xc1, 0x72}
	idr265 = []byte{0x26, 0x01, 0xaf, 0x06}
	trl265 = []byte{0x02, 0x01, 0xd0, 0x09}
)

// unitCases are shared by the framing tests: each list of NAL units is written with every
// framing and must split back into itself.
var unitCases = []struct {
	name  string
	units [][]byte
}{
	{"one unit", [][]byte{idr264}},
	{"parameter sets and a slice", [][]byte{sps264, pps264, idr264}},
	{"one-byte unit", [][]byte{{0x09}, non264}},
	{"unit of 300 bytes", [][]byte{append([]byte{0x65}, bytes.Repeat([]byte{0x5a}, 299)...)}},
}

func lengthPrefixed(units [][]byte, size int) []byte {
	var b []byte
	for _, u := range units {
		for i := size - 1; i >= 0; i-- {
			b = append(b, byte(len(u)>>(8*i)))
		}
		b = append(b, u...)
	}
	return b
}

func annexB(units [][]byte, long bool) []byte {
	var b []byte
	for _, u := range units {
		if long {
			b = append(b, 0)
		}
		b = append(append(b, 0, 0, 1), u...)
	}
	return b
}

func TestSplitUnits(t *testing.T) {
	for _, c := range unitCases {
		framings := map[string][]byte{
			"annex B, 3-byte start codes": annexB(c.units, false),
			"annex B, 4-byte start codes": annexB(c.units, true),
			"annex B, trailing zeros":     append(annexB(c.units, true), 0, 0, 0),
			"length size 2":               lengthPrefixed(c.units, 2),
			"length size 4":               lengthPrefixed(c.units, 4),
		}
		sizes := map[string]int{"length size 2": 2, "length size 4": 4}
		if len(slices.MaxFunc(c.units, func(a, b []byte) int { return len(a) - len(b) })) < 256 {
			framings["length size 1"] = lengthPrefixed(c.units, 1)
			sizes["length size 1"] = 1
		}
		for framing, data := range framings {
			got, err := splitUnits(data, sizes[framing])
			if err != nil {
				t.Errorf("%s, %s: %v", c.name, framing, err)
				continue
			}
			if !slices.EqualFunc(got, c.units, bytes.Equal) {
				t.Errorf("%s, %s: split into %x, want %x", c.name, framing, got, c.units)
			}
		}
	}
}

func TestSplitUnitsErrors(t *testing.T) {
	for _, c := range []struct {
		name       string
		data       []byte
		lengthSize int
	}{
		{"empty", nil, 4},
		{"length runs past the end", []byte{0, 0, 0, 9, 0x65, 0x88}, 4},
		{"zero length", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0x65}, 4},
		{"length cut", []byte{0, 0, 0, 1, 0x65, 0, 0}, 4},
		{"length size 5", []byte{0, 0, 0, 0, 1, 0x65}, 5},
		{"annex B without a start code", []byte{0x65, 0x88, 0x84}, 0},
		{"annex B with bytes before the start code", []byte{7, 0, 0, 1, 0x65}, 0},
		{"annex B with only start codes", []byte{0, 0, 1, 0, 0, 0, 1}, 0},
	} {
		if units, err := splitUnits(c.data, c.lengthSize); !errors.Is(err, errFraming) {
			t.Errorf("%s: %x, %v; want a framing error", c.name, units, err)
		}
	}
}

func avcC(lengthSize int, sps, pps [][]byte) []byte {
	b := []byte{1, 0x42, 0xc0, 0x1e, 0xfc | byte(lengthSize-1), 0xe0 | byte(len(sps))}
	for _, u := range sps {
		b = append(append(b, byte(len(u)>>8), byte(len(u))), u...)
	}
	b = append(b, byte(len(pps)))
	for _, u := range pps {
		b = append(append(b, byte(len(u)>>8), byte(len(u))), u...)
	}
	return b
}

func hvcC(lengthSize int, arrays ...[]byte) []byte {
	b := make([]byte, 22)
	b[0] = 1
	b[21] = 0xfc | byte(lengthSize-1)
	b = append(b, byte(len(arrays)))
	for _, u := range arrays {
		b = append(b, 0x80|(u[0]>>1)&0x3f, 0, 1, byte(len(u)>>8), byte(len(u)))
		b = append(b, u...)
	}
	return b
}

func TestParseExtradata(t *testing.T) {
	for _, c := range []struct {
		name       string
		codec      codec
		data       []byte
		lengthSize int
		params     [][]byte
	}{
		{"none", codecH264, nil, 0, nil},
		{"avcC", codecH264, avcC(4, [][]byte{sps264}, [][]byte{pps264}), 4, [][]byte{sps264, pps264}},
		{"avcC, two PPS, length size 2", codecH264, avcC(2, [][]byte{sps264}, [][]byte{pps264, pps264}), 2,
			[][]byte{sps264, pps264, pps264}},
		{"annex B H.264", codecH264, annexB([][]byte{sps264, pps264}, true), 0, [][]byte{sps264, pps264}},
		{"annex B with a SEI", codecH264, annexB([][]byte{sps264, {0x06, 0x05}, pps264}, false), 0, [][]byte{sps264, pps264}},
		{"hvcC", codecH265, hvcC(4, vps265, sps265, pps265), 4, [][]byte{vps265, sps265, pps265}},
		{"annex B H.265", codecH265, annexB([][]byte{vps265, sps265, pps265}, true), 0, [][]byte{vps265, sps265, pps265}},
	} {
		lengthSize, params, err := parseExtradata(c.codec, c.data)
		if err != nil || lengthSize != c.lengthSize || !slices.EqualFunc(params, c.params, bytes.Equal) {
			t.Errorf("%s: %d, %x, %v; want %d, %x", c.name, lengthSize, params, err, c.lengthSize, c.params)
		}
	}
	for _, c := range []struct {
		name  string
		codec codec
		data  []byte
	}{
		{"avcC cut", codecH264, avcC(4, [][]byte{sps264}, [][]byte{pps264})[:12]},
		{"avcC version 2", codecH264, append([]byte{2}, avcC(4, [][]byte{sps264}, nil)[1:]...)},
		{"avcC length size 3", codecH264, avcC(3, [][]byte{sps264}, [][]byte{pps264})},
		{"hvcC cut", codecH265, hvcC(4, vps265, sps265, pps265)[:30]},
		{"hvcC too short", codecH265, []byte{1, 2, 3}},
	} {
		if _, _, err := parseExtradata(c.codec, c.data); !errors.Is(err, errFraming) {
			t.Errorf("%s: %v, want a framing error", c.name, err)
		}
	}
}

func TestFramer(t *testing.T) {
	type step struct {
		units [][]byte
		key   bool
		// want is the access unit; nil with err set when the packet is refused.
		want [][]byte
		err  error
	}
	for _, c := range []struct {
		name   string
		codec  codec
		params [][]byte
		steps  []step
	}{
		{"parameter sets go before each IDR", codecH264, [][]byte{sps264, pps264}, []step{
			{units: [][]byte{idr264}, want: [][]byte{sps264, pps264, idr264}},
			{units: [][]byte{non264}, want: [][]byte{non264}},
			{units: [][]byte{idr264}, want: [][]byte{sps264, pps264, idr264}},
		}},
		{"units before the first random access unit are refused", codecH264, [][]byte{sps264, pps264}, []step{
			{units: [][]byte{non264}, err: errUnsynced},
			{units: [][]byte{idr264}, want: [][]byte{sps264, pps264, idr264}},
		}},
		{"a keyframe without IDR is a random access unit", codecH264, [][]byte{sps264, pps264}, []step{
			{units: [][]byte{non264}, key: true, want: [][]byte{sps264, pps264, non264}},
		}},
		{"in-band parameter sets are kept and replace those of their type", codecH264, nil, []step{
			{units: [][]byte{sps264, pps264, idr264}, want: [][]byte{sps264, pps264, idr264}},
			{units: [][]byte{{0x68, 0xee}, non264}, want: [][]byte{{0x68, 0xee}, non264}},
			{units: [][]byte{idr264}, want: [][]byte{sps264, {0x68, 0xee}, idr264}},
		}},
		{"delimiters and filler are dropped", codecH264, [][]byte{sps264, pps264}, []step{
			{units: [][]byte{aud264, idr264, {0x0c, 0xff, 0xff}}, want: [][]byte{sps264, pps264, idr264}},
			{units: [][]byte{aud264}, err: errFraming},
		}},
		{"RTP payload types are refused", codecH264, [][]byte{sps264, pps264}, []step{
			{units: [][]byte{{0x7c, 0x85}}, key: true, err: errFraming},
		}},
		{"too many units are refused", codecH264, [][]byte{sps264, pps264}, []step{
			{units: slices.Repeat([][]byte{idr264}, 24), err: errFraming},
		}},
		{"H.265 parameter sets go before each IRAP", codecH265, [][]byte{vps265, sps265, pps265}, []step{
			{units: [][]byte{trl265}, err: errUnsynced},
			{units: [][]byte{idr265}, want: [][]byte{vps265, sps265, pps265, idr265}},
			{units: [][]byte{trl265}, want: [][]byte{trl265}},
		}},
		{"H.265 one-byte units are refused", codecH265, nil, []step{
			{units: [][]byte{{0x26}}, key: true, err: errFraming},
		}},
	} {
		f := framer{codec: c.codec, lengthSize: 4, params: c.params}
		for i, s := range c.steps {
			got, err := f.accessUnit(lengthPrefixed(s.units, 4), s.key)
			if !errors.Is(err, s.err) || !slices.EqualFunc(got, s.want, bytes.Equal) {
				t.Errorf("%s, packet %d: %x, %v; want %x, %v", c.name, i, got, err, s.want, s.err)
			}
		}
	}
}

func FuzzSplitUnits(f *testing.F) {
	for _, c := range unitCases {
		f.Add(annexB(c.units, true), uint8(0))
		f.Add(lengthPrefixed(c.units, 4), uint8(4))
		f.Add(lengthPrefixed(c.units, 2), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, lengthSize uint8) {
		units, err := splitUnits(data, int(lengthSize))
		if err != nil {
			return
		}
		for _, u := range units {
			if len(u) == 0 {
				t.Fatal("empty unit")
			}
		}
		if lengthSize > 0 && !bytes.Equal(lengthPrefixed(units, int(lengthSize)), data) {
			t.Fatalf("units %x do not make up %x", units, data)
		}
	})
}

func FuzzParseExtradata(f *testing.F) {
	f.Add(avcC(4, [][]byte{sps264}, [][]byte{pps264}), false)
	f.Add(annexB([][]byte{sps264, pps264}, true), false)
	f.Add(hvcC(4, vps265, sps265, pps265), true)
	f.Fuzz(func(t *testing.T, data []byte, h265 bool) {
		c := codecH264
		if h265 {
			c = codecH265
		}
		lengthSize, params, err := parseExtradata(c, data)
		if err != nil {
			return
		}
		if lengthSize < 0 || lengthSize > 4 || lengthSize == 3 {
			t.Fatalf("length size %d", lengthSize)
		}
		for _, u := range params {
			if len(u) == 0 {
				t.Fatal("empty parameter set")
			}
		}
	})
}

// FuzzAccessUnit frames arbitrary packets: whatever comes out must be something gortsplib's RTP
// decoders take back.
func FuzzAccessUnit(f *testing.F) {
	f.Add(lengthPrefixed([][]byte{idr264}, 4), true, false)
	f.Add(lengthPrefixed([][]byte{aud264, sps264, pps264, idr264}, 4), false, false)
	f.Add(lengthPrefixed([][]byte{vps265, sps265, pps265, idr265}, 4), false, true)
	f.Fuzz(func(t *testing.T, data []byte, key, h265 bool) {
		fr := framer{codec: codecH264, lengthSize: 4, params: [][]byte{sps264, pps264}}
		if h265 {
			fr = framer{codec: codecH265, lengthSize: 4, params: [][]byte{vps265, sps265, pps265}}
		}
		for range 2 {
			au, err := fr.accessUnit(data, key)
			if err != nil {
				return
			}
			if len(au) == 0 || len(au) > fr.codec.maxUnits() {
				t.Fatalf("%d units", len(au))
			}
			for _, u := range au {
				if len(u) == 0 || fr.codec.isPayloadType(u) {
					t.Fatalf("unit %x", u)
				}
			}
		}
	})
}
