package replay

// This file owns the byte-level part of a replay: it reads the parameter sets a container keeps in
// its extradata (ISO/IEC 14496-15 avcC and hvcC records, or Annex B), splits demuxed packets into
// NAL units (length-prefixed or Annex B), and turns each packet into the access unit that is
// packetized for RTP.

import (
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// codec is a video codec RTP carries without re-encoding.
type codec int

const (
	codecH264 codec = iota
	codecH265
)

func (c codec) String() string {
	if c == codecH265 {
		return "h265"
	}
	return "h264"
}

// maxUnits and maxAUSize are the limits of gortsplib's RTP decoders: an access unit beyond them
// would be dropped by the reader, which would then never acknowledge it.
func (c codec) maxUnits() int {
	if c == codecH265 {
		return h265.MaxNALUsPerAccessUnit
	}
	return h264.MaxNALUsPerAccessUnit
}

func (c codec) maxAUSize() int {
	if c == codecH265 {
		return h265.MaxAccessUnitSize
	}
	return h264.MaxAccessUnitSize
}

// unitType is the NAL unit type from the first header byte.
func (c codec) unitType(u []byte) byte {
	if c == codecH265 {
		return (u[0] >> 1) & 0x3f
	}
	return u[0] & 0x1f
}

// isParam reports whether u is a parameter set: SPS or PPS, and VPS for H.265.
func (c codec) isParam(u []byte) bool {
	t := c.unitType(u)
	if c == codecH265 {
		return t == byte(h265.NALUType_VPS_NUT) || t == byte(h265.NALUType_SPS_NUT) || t == byte(h265.NALUType_PPS_NUT)
	}
	return t == byte(h264.NALUTypeSPS) || t == byte(h264.NALUTypePPS)
}

// isFiller reports whether u carries nothing a decoder needs: access unit delimiters and filler
// data only spend NAL unit slots and bytes, and RTP marks the end of an access unit itself.
func (c codec) isFiller(u []byte) bool {
	t := c.unitType(u)
	if c == codecH265 {
		return t == byte(h265.NALUType_AUD_NUT) || t == byte(h265.NALUType_FD_NUT)
	}
	return t == byte(h264.NALUTypeAccessUnitDelimiter) || t == byte(h264.NALUTypeFillerData)
}

// isPayloadType reports whether u's type is one the RTP payload format takes for its own packets
// (RFC 6184 §5.2, RFC 7798 §4.4): sent alone, a reader would unpack it as an aggregation or a
// fragment. H.265 NAL unit headers are two bytes.
func (c codec) isPayloadType(u []byte) bool {
	t := c.unitType(u)
	if c == codecH265 {
		return len(u) < 2 || (t >= byte(h265.NALUType_AggregationUnit) && t <= byte(h265.NALUType_PACI))
	}
	return t >= byte(h264.NALUTypeSTAPA) && t <= byte(h264.NALUTypeFUB)
}

func (c codec) isRandomAccess(au [][]byte) bool {
	if c == codecH265 {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// errFraming marks a packet whose bytes do not split into NAL units.
var errFraming = errors.New("bad NAL unit framing")

// splitUnits splits a packet into NAL units. lengthSize is the size of the big-endian length in
// front of each unit (1 to 4), or 0 for Annex B start codes. The units share data's memory.
func splitUnits(data []byte, lengthSize int) ([][]byte, error) {
	if lengthSize == 0 {
		return splitAnnexB(data)
	}
	if lengthSize < 1 || lengthSize > 4 {
		return nil, fmt.Errorf("%w: NAL unit length size %d", errFraming, lengthSize)
	}
	var units [][]byte
	for len(data) > 0 {
		if len(data) < lengthSize {
			return nil, fmt.Errorf("%w: %d bytes left, a length takes %d", errFraming, len(data), lengthSize)
		}
		// uint64: four length bytes overflow an int on 32-bit machines.
		var n uint64
		for _, b := range data[:lengthSize] {
			n = n<<8 | uint64(b)
		}
		data = data[lengthSize:]
		if n == 0 || n > uint64(len(data)) {
			return nil, fmt.Errorf("%w: NAL unit of %d bytes with %d left", errFraming, n, len(data))
		}
		units = append(units, data[:n])
		data = data[n:]
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("%w: no NAL unit", errFraming)
	}
	return units, nil
}

// splitAnnexB splits at 00 00 01 start codes. The zero byte of a four-byte start code and
// trailing zero bytes belong to no unit.
func splitAnnexB(data []byte) ([][]byte, error) {
	if !isAnnexB(data) {
		return nil, fmt.Errorf("%w: Annex B data does not begin with a start code", errFraming)
	}
	start := startCode(data, 0)
	var units [][]byte
	for start >= 0 {
		next := startCode(data, start)
		end := len(data)
		if next >= 0 {
			end = next - 3
		}
		for end > start && data[end-1] == 0 {
			end--
		}
		if end > start {
			units = append(units, data[start:end])
		}
		start = next
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("%w: no NAL unit", errFraming)
	}
	return units, nil
}

// isAnnexB reports whether data begins with a start code, after nothing but zero bytes.
func isAnnexB(data []byte) bool {
	start := startCode(data, 0)
	return start >= 0 && allZero(data[:start-3])
}

// startCode returns the index just past the first 00 00 01 at or after from, or -1.
func startCode(data []byte, from int) int {
	zeros := 0
	for i := from; i < len(data); i++ {
		switch {
		case data[i] == 0:
			zeros++
		case data[i] == 1 && zeros >= 2:
			return i + 1
		default:
			zeros = 0
		}
	}
	return -1
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// parseExtradata reads a stream's codec configuration: the NAL unit length size of its packets
// (0 for Annex B) and the parameter sets it carries, in order.
func parseExtradata(c codec, data []byte) (lengthSize int, params [][]byte, err error) {
	switch {
	case len(data) == 0:
		// Annex B streams (MPEG-TS, raw files) often keep their parameter sets in-band only.
		return 0, nil, nil
	case isAnnexB(data):
		units, err := splitAnnexB(data)
		if err != nil {
			return 0, nil, err
		}
		for _, u := range units {
			if c.isParam(u) {
				params = append(params, u)
			}
		}
		return 0, params, nil
	case c == codecH265:
		return parseHVCC(data)
	default:
		return parseAVCC(data)
	}
}

// parseAVCC reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
func parseAVCC(data []byte) (int, [][]byte, error) {
	if len(data) < 7 || data[0] != 1 {
		return 0, nil, fmt.Errorf("%w: avcC record of %d bytes, version %d", errFraming, len(data), first(data))
	}
	lengthSize := int(data[4]&3) + 1
	if lengthSize == 3 {
		return 0, nil, fmt.Errorf("%w: avcC NAL unit length size 3", errFraming)
	}
	r := reader{data: data[5:]}
	var params [][]byte
	for range 2 { // SPS, then PPS
		n := int(r.byte())
		if len(params) == 0 {
			n &= 0x1f
		}
		for range n {
			if u := r.bytes(int(r.uint16())); len(u) > 0 {
				params = append(params, u)
			}
		}
	}
	if r.err {
		return 0, nil, fmt.Errorf("%w: avcC record ends early", errFraming)
	}
	return lengthSize, params, nil
}

// parseHVCC reads an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1).
func parseHVCC(data []byte) (int, [][]byte, error) {
	// Version 0 records come from muxers written before the standard was final; the layout is
	// the same.
	if len(data) < 23 || data[0] > 1 {
		return 0, nil, fmt.Errorf("%w: hvcC record of %d bytes, version %d", errFraming, len(data), first(data))
	}
	lengthSize := int(data[21]&3) + 1
	if lengthSize == 3 {
		return 0, nil, fmt.Errorf("%w: hvcC NAL unit length size 3", errFraming)
	}
	r := reader{data: data[22:]}
	var params [][]byte
	for range int(r.byte()) {
		r.byte() // array_completeness and NAL unit type: each unit says its own type
		for range int(r.uint16()) {
			if u := r.bytes(int(r.uint16())); len(u) > 0 {
				params = append(params, u)
			}
		}
	}
	if r.err {
		return 0, nil, fmt.Errorf("%w: hvcC record ends early", errFraming)
	}
	return lengthSize, params, nil
}

func first(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// reader reads big-endian fields and remembers running past the end instead of panicking.
type reader struct {
	data []byte
	err  bool
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.data) {
		r.err = true
		r.data = nil
		return nil
	}
	b := r.data[:n]
	r.data = r.data[n:]
	return b
}

func (r *reader) byte() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if b := r.bytes(2); b != nil {
		return uint16(b[0])<<8 | uint16(b[1])
	}
	return 0
}

// framer turns the packets of one stream into access units ready for RTP.
type framer struct {
	codec      codec
	lengthSize int
	// params are the latest parameter sets seen, in the order they came: from the extradata, then
	// from the last packet that carried any.
	params [][]byte
	// synced is set once a random access unit has been framed; the units before it reference
	// pictures a reader never had.
	synced bool
}

// errUnsynced marks a packet framed before the first random access unit.
var errUnsynced = errors.New("before the first random access unit")

// accessUnit frames one packet. key is the demuxer's keyframe flag: some encoders start their
// GOPs with I slices and a recovery point rather than an IDR picture. A random access unit that
// lacks parameter sets gets the latest ones in front, so that a reader can start at any of them.
func (f *framer) accessUnit(data []byte, key bool) ([][]byte, error) {
	units, err := splitUnits(data, f.lengthSize)
	if err != nil {
		return nil, err
	}
	au := units[:0]
	var params [][]byte
	for _, u := range units {
		switch {
		case f.codec.isPayloadType(u):
			return nil, fmt.Errorf("%w: NAL unit type %d is reserved for RTP", errFraming, f.codec.unitType(u))
		case f.codec.isFiller(u):
		case f.codec.isParam(u):
			params = append(params, u)
			au = append(au, u)
		default:
			au = append(au, u)
		}
	}
	if len(au) == 0 {
		return nil, fmt.Errorf("%w: only delimiters and filler", errFraming)
	}
	f.keepParams(params)
	if key || f.codec.isRandomAccess(au) {
		f.synced = true
		if params == nil && f.params != nil {
			au = append(append(make([][]byte, 0, len(f.params)+len(au)), f.params...), au...)
		}
	} else if !f.synced {
		return nil, errUnsynced
	}
	size := 0
	for _, u := range au {
		size += len(u)
	}
	if len(au) > f.codec.maxUnits() || size > f.codec.maxAUSize() {
		return nil, fmt.Errorf("%w: access unit of %d NAL units and %d bytes is beyond what RTP readers take (%d, %d)",
			errFraming, len(au), size, f.codec.maxUnits(), f.codec.maxAUSize())
	}
	return au, nil
}

// keepParams replaces the kept parameter sets of each type that params has: a stream that repeats
// only its PPS keeps its SPS.
func (f *framer) keepParams(params [][]byte) {
	if params == nil {
		return
	}
	kept := make([][]byte, 0, len(f.params)+len(params))
	for _, old := range f.params {
		replaced := false
		for _, u := range params {
			replaced = replaced || f.codec.unitType(u) == f.codec.unitType(old)
		}
		if !replaced {
			kept = append(kept, old)
		}
	}
	f.params = append(kept, params...)
}

// param returns the first parameter set of NAL unit type t, or nil.
func (f *framer) param(t byte) []byte {
	for _, u := range f.params {
		if f.codec.unitType(u) == t {
			return u
		}
	}
	return nil
}
