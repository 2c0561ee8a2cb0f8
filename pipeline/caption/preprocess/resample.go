package preprocess

import "math"

// precisionBits is the fixed-point precision of Pillow's 8-bit resampling weights: 32 bits less 8
// for the pixel and 2 of headroom, since the negative lobes let partial sums overshoot.
const precisionBits = 22

// half is added to every sum so that the final shift rounds to nearest rather than down.
const half = 1 << (precisionBits - 1)

// coeffs is one resampling pass: output pixel i is the sum over k of source pixel first[i]+k times
// weights[i][k], the weights in fixed point with precisionBits fraction bits.
type coeffs struct {
	first   []int
	weights [][]int32
}

// newCoeffs computes the weights that take a row (or column) of inSize pixels to outSize as
// Pillow's precompute_coeffs and normalize_coeffs_8bpc do, to the bit: pixel centres are aligned,
// and when shrinking the kernel is widened by the scale so that it averages every source pixel.
func newCoeffs(inSize, outSize, resample int) *coeffs {
	filter, support := bicubic, 2.0
	if resample == Bilinear {
		filter, support = bilinear, 1.0
	}
	scale := float64(inSize) / float64(outSize)
	stretch := max(scale, 1)
	support *= stretch
	inv := 1 / stretch // as Pillow: a product by the reciprocal may differ from a quotient in the last bit
	c := &coeffs{first: make([]int, outSize), weights: make([][]int32, outSize)}
	var w []float64
	for i := range outSize {
		center := (float64(i) + 0.5) * scale
		// Converting truncates toward zero, as Pillow's C casts do when they round these.
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), inSize)
		w = w[:0]
		sum := 0.0
		for j := lo; j < hi; j++ {
			v := filter((float64(j) - center + 0.5) * inv)
			w = append(w, v)
			sum += v
		}
		fixed := make([]int32, len(w))
		for k, v := range w {
			if sum != 0 {
				v /= sum
			}
			// Rounded half away from zero, by truncating after adding ±0.5 as Pillow does.
			if v < 0 {
				fixed[k] = int32(v*(1<<precisionBits) - 0.5)
			} else {
				fixed[k] = int32(v*(1<<precisionBits) + 0.5)
			}
		}
		c.first[i], c.weights[i] = lo, fixed
	}
	return c
}

// bicubic is Keys' cubic convolution kernel with a = -0.5, Pillow's BICUBIC, evaluated in
// Pillow's order. The float64 conversions keep the compiler from fusing a multiply and an add
// (it may, on arm64 for one), which could change a weight's last bit and so, rarely, its
// fixed-point value.
func bicubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		p := float64((a+2)*x) - (a + 3)
		return float64(p*x*x) + 1
	case x < 2:
		p := float64((x-5)*x) + 8
		return float64((float64(p*x) - 4) * a) // the caller adds it up
	}
	return 0
}

// bilinear is the triangle kernel, Pillow's BILINEAR.
func bilinear(x float64) float64 {
	x = math.Abs(x)
	if x < 1 {
		return 1 - x
	}
	return 0
}

// clip8 turns a fixed-point sum into a byte; the negative lobes can take it outside 0..255.
func clip8(s int32) byte {
	return byte(min(max(s>>precisionBits, 0), 255))
}

// horizontal resamples every row of src, packed BGR srcW pixels wide, into dst, len(c.first)
// pixels wide.
func (c *coeffs) horizontal(dst, src []byte, srcW int) {
	inRow, outRow := srcW*3, len(c.first)*3
	for y := range len(src) / inRow {
		in := src[y*inRow : (y+1)*inRow]
		out := dst[y*outRow : (y+1)*outRow]
		for x, w := range c.weights {
			px := in[c.first[x]*3 : (c.first[x]+len(w))*3]
			s0, s1, s2 := int32(half), int32(half), int32(half)
			for k, wk := range w {
				p := px[3*k : 3*k+3 : 3*k+3]
				s0 += int32(p[0]) * wk
				s1 += int32(p[1]) * wk
				s2 += int32(p[2]) * wk
			}
			out[3*x], out[3*x+1], out[3*x+2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
}

// vertical resamples the columns of src into dst, len(c.first) rows; rows are len(acc) bytes
// long. Each byte is filtered on its own, so the channels need no telling apart. It sums whole
// rows into acc, rather than one output byte at a time, to read memory in order.
func (c *coeffs) vertical(dst, src []byte, acc []int32) {
	rowLen := len(acc)
	for y, w := range c.weights {
		for i := range acc {
			acc[i] = half
		}
		for k, wk := range w {
			row := src[(c.first[y]+k)*rowLen : (c.first[y]+k+1)*rowLen]
			for i, v := range row {
				acc[i] += int32(v) * wk
			}
		}
		out := dst[y*rowLen : (y+1)*rowLen]
		for i, s := range acc {
			out[i] = clip8(s)
		}
	}
}
