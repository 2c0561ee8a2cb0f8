package configs

import "fmt"

// Limits on a motion mask, so that a registry row and the gate's per-frame work stay small.
const (
	MaxMaskPolygons = 32
	MaxMaskPoints   = 64
)

// Point is a position in a frame as fractions of its width and height, from the top left, so
// that a mask fits the camera whatever resolution it sends.
type Point struct {
	X float64 `json:"x" yaml:"x"`
	Y float64 `json:"y" yaml:"y"`
}

// Polygon is an area of a frame, three points or more.
type Polygon []Point

// ValidateMask reports what is wrong with a motion mask, or nil.
func ValidateMask(mask []Polygon) error {
	if len(mask) > MaxMaskPolygons {
		return fmt.Errorf("%d polygons, at most %d allowed", len(mask), MaxMaskPolygons)
	}
	for i, p := range mask {
		if len(p) < 3 || len(p) > MaxMaskPoints {
			return fmt.Errorf("polygon %d has %d points, want 3 to %d", i, len(p), MaxMaskPoints)
		}
		for _, pt := range p {
			// The negated test also refuses NaN.
			if !(pt.X >= 0 && pt.X <= 1 && pt.Y >= 0 && pt.Y <= 1) {
				return fmt.Errorf("polygon %d: point (%g, %g) is not within the frame (0 to 1)", i, pt.X, pt.Y)
			}
		}
	}
	return nil
}
