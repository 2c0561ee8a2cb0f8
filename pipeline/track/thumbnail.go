package track

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"
)

// Thumbnail is a moment's best frame, scaled down and JPEG-encoded, with the objects in it.
type Thumbnail struct {
	JPEG          []byte
	Width, Height int
	// Boxes are the confirmed tracks matched in that frame.
	Boxes []Box
}

// Box is a tracked object on a thumbnail, in the thumbnail's pixels.
type Box struct {
	Class string  `json:"class"`
	Track int     `json:"track"`
	Score float32 `json:"score"`
	X1    int     `json:"x1"`
	Y1    int     `json:"y1"`
	X2    int     `json:"x2"`
	Y2    int     `json:"y2"`
}

// picture is a copy of a best frame, kept until a thumbnail is made of it.
type picture struct {
	bgr           []byte
	width, height int
	tracks        []Track // matched in this frame, in frame pixels
}

// encode scales p down to at most maxWidth pixels wide and encodes it as a JPEG of the given
// quality. OpenCV runs through cgo: a panic there becomes an error.
func (p *picture) encode(maxWidth, quality int) (t *Thumbnail, err error) {
	defer func() {
		if v := recover(); v != nil {
			t, err = nil, fmt.Errorf("thumbnail: opencv panicked: %v", v)
		}
	}()
	src, err := gocv.NewMatFromBytes(p.height, p.width, gocv.MatTypeCV8UC3, p.bgr)
	if err != nil {
		return nil, fmt.Errorf("thumbnail: %dx%d picture: %w", p.width, p.height, err)
	}
	defer src.Close()
	img, scale := src, 1.0
	if p.width > maxWidth {
		scale = float64(maxWidth) / float64(p.width)
		small := gocv.NewMat()
		defer small.Close()
		size := image.Pt(maxWidth, max(1, int(math.Round(float64(p.height)*scale))))
		// Area interpolation averages the pixels a thumbnail pixel covers: no aliasing.
		gocv.Resize(src, &small, size, 0, 0, gocv.InterpolationArea)
		img = small
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("thumbnail: encode: %w", err)
	}
	defer buf.Close()
	t = &Thumbnail{JPEG: append([]byte(nil), buf.GetBytes()...), Width: img.Cols(), Height: img.Rows()}
	px := func(v float32, limit int) int {
		return min(limit, max(0, int(math.Round(float64(v)*scale))))
	}
	for _, tr := range p.tracks {
		t.Boxes = append(t.Boxes, Box{
			Class: tr.Class, Track: tr.ID, Score: tr.Score,
			X1: px(tr.X1, t.Width), Y1: px(tr.Y1, t.Height), X2: px(tr.X2, t.Width), Y2: px(tr.Y2, t.Height),
		})
	}
	return t, nil
}
