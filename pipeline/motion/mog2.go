package motion

// #cgo pkg-config: opencv4
// #cgo CXXFLAGS: --std=c++11
// #include <stdlib.h>
// #include "mog2.h"
import "C"

import (
	"unsafe"

	"gocv.io/x/gocv"
)

// mog2 is OpenCV's MOG2 background subtractor with a learning rate per call.
type mog2 struct{ p unsafe.Pointer }

func newMOG2(history int, varThreshold float64) mog2 {
	return mog2{C.vigil_mog2_new(C.int(history), C.double(varThreshold))}
}

// apply learns src into the model at rate (negative: OpenCV's automatic 1/min(2·frames, history))
// and writes the foreground mask to dst.
func (m mog2) apply(src gocv.Mat, dst *gocv.Mat, rate float64) {
	C.vigil_mog2_apply(m.p, unsafe.Pointer(src.Ptr()), unsafe.Pointer(dst.Ptr()), C.double(rate))
}

func (m *mog2) close() {
	if m.p != nil {
		C.vigil_mog2_free(m.p)
		m.p = nil
	}
}
