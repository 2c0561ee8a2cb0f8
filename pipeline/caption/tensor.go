package caption

import (
	"fmt"
	"math"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// tensor is a float tensor in the element type a model declares: float32, or float16 as the
// fp16 and q4f16 exports use at their edges. vigil allocates every output itself, because
// onnxruntime_go copies an output it allocates by element count, not byte count, which corrupts
// float16 outputs.
type tensor struct {
	v     ort.Value
	shape ort.Shape
	f16   bool
	// raw is the tensor's memory, shared with ONNX Runtime.
	raw []byte
}

func newTensor(dt ort.TensorElementDataType, shape ort.Shape) (*tensor, error) {
	n := shape.FlattenedSize()
	switch dt {
	case ort.TensorElementDataTypeFloat:
		t, err := ort.NewEmptyTensor[float32](shape)
		if err != nil {
			return nil, err
		}
		var raw []byte
		if n > 0 {
			raw = unsafe.Slice((*byte)(unsafe.Pointer(&t.GetData()[0])), n*4)
		}
		return &tensor{v: t, shape: shape.Clone(), raw: raw}, nil
	case ort.TensorElementDataTypeFloat16:
		// ONNX Runtime wants at least one byte even for a tensor with no elements.
		buf := make([]byte, max(1, n*2))
		t, err := ort.NewCustomDataTensor(shape, buf, ort.TensorElementDataTypeFloat16)
		if err != nil {
			return nil, err
		}
		return &tensor{v: t, shape: shape.Clone(), f16: true, raw: buf[:n*2]}, nil
	}
	return nil, fmt.Errorf("unsupported element type %s (want float or float16)", dt)
}

func (t *tensor) destroy() error {
	if t == nil || t.v == nil {
		return nil
	}
	err := t.v.Destroy()
	t.v = nil
	return err
}

// set writes src, converting to the tensor's element type, from element offset at.
func (t *tensor) set(at int, src []float32) {
	if !t.f16 {
		copy(unsafe.Slice((*float32)(unsafe.Pointer(&t.raw[0])), len(t.raw)/4)[at:], src)
		return
	}
	for i, v := range src {
		h := toHalf(v)
		t.raw[(at+i)*2], t.raw[(at+i)*2+1] = byte(h), byte(h>>8)
	}
}

// get reads n elements from element offset at into dst, as float32.
func (t *tensor) get(dst []float32, at, n int) []float32 {
	dst = dst[:0]
	if !t.f16 {
		return append(dst, unsafe.Slice((*float32)(unsafe.Pointer(&t.raw[0])), len(t.raw)/4)[at:at+n]...)
	}
	for i := at; i < at+n; i++ {
		dst = append(dst, fromHalf(uint16(t.raw[i*2])|uint16(t.raw[i*2+1])<<8))
	}
	return dst
}

// gatherRows returns a tensor of the same shape whose row i (first axis) is row rows[i] of t.
func (t *tensor) gatherRows(rows []int) (*tensor, error) {
	dt := ort.TensorElementDataType(ort.TensorElementDataTypeFloat)
	if t.f16 {
		dt = ort.TensorElementDataTypeFloat16
	}
	out, err := newTensor(dt, t.shape)
	if err != nil {
		return nil, err
	}
	size := len(t.raw) / int(t.shape[0])
	for i, r := range rows {
		copy(out.raw[i*size:(i+1)*size], t.raw[r*size:(r+1)*size])
	}
	return out, nil
}

// toHalf rounds v to the nearest IEEE 754 half-precision value, ties to even.
func toHalf(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case exp >= 0x1f: // too large, or infinite
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		h := mant >> shift
		rem, half := mant&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, which is still correct rounding (up to infinity)
	}
	return sign | uint16(h)
}

// fromHalf widens an IEEE 754 half-precision value.
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: scale it into a normal float32.
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
