//go:build cgo

package decode

/*
#cgo pkg-config: libavutil libswscale
#include "convert.h"
*/
import "C"

import "unsafe"

// packBGR copies the converter's picture into a new buffer without row padding.
func packBGR(c *C.vd_conv) (w, h int, bgr []byte) {
	w, h = int(c.w), int(c.h)
	row, stride := w*3, int(c.linesize[0])
	src := unsafe.Slice((*byte)(unsafe.Pointer(c.bgr[0])), stride*(h-1)+row)
	bgr = make([]byte, row*h)
	for y := range h {
		copy(bgr[y*row:(y+1)*row], src[y*stride:])
	}
	return w, h, bgr
}
