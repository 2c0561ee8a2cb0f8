// Package pipeline owns the per-frame work between a source and the bus: the motion gate, the
// detector, the grouping of detections into moments, and the Moment itself, the event every later
// part of vigil stores and searches.
package pipeline

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	"github.com/vigilcam/vigil/pipeline/track"
)

// Moment is a span of activity on one source: the unit vigil publishes, stores and searches.
// Every message carries the whole moment, so consumers can upsert by ID in any order.
type Moment struct {
	// ID is a UUIDv7 chosen by the producer; it is the primary key, the same in every message of
	// the moment.
	ID string `json:"id"`
	// Revision numbers the messages of one moment from 0 (opened), so that each is a new message
	// to the bus, whose deduplication would otherwise drop every update as a repeat.
	Revision int    `json:"revision"`
	Tenant   string `json:"tenant"`
	VideoID  int64  `json:"video_id"`
	// Source names the camera or file for people.
	Source string `json:"source"`
	// StartS and EndS are seconds from the start of the source.
	StartS    float64   `json:"start_s"`
	EndS      float64   `json:"end_s"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	// Objects counts the most objects of each class seen at once.
	Objects map[string]int `json:"objects"`
	// Tracks counts the distinct objects of each class followed during the moment.
	Tracks  map[string]int `json:"tracks,omitempty"`
	Caption string         `json:"caption"`
	// BestScore is the score of the best detection, taken from the moment's best frame.
	BestScore float32 `json:"best_score"`
	// Thumbnail is the best frame as a JPEG; a message without one leaves the stored one as it is.
	Thumbnail []byte `json:"thumbnail,omitempty"`
	// Boxes are the objects on the thumbnail, in its pixels.
	Boxes []track.Box `json:"boxes,omitempty"`
	// Embedding is the caption's sentence embedding (384 dimensions, L2-normalised); empty when
	// no embedder is installed, and then a stored one is left as it is.
	Embedding []float32 `json:"embedding,omitempty"`
	// Models names the model files that produced the moment, by role.
	Models map[string]string `json:"models"`
}

// MomentID returns a UUIDv7 whose time is start and whose other bits are derived from key and
// offset (the moment's stream time). Replaying the same file gives the same IDs, which makes
// indexing a file twice idempotent; a live source passes a random key.
func MomentID(start time.Time, key []byte, offset time.Duration) string {
	h := sha256.New()
	h.Write(key)
	binary.Write(h, binary.BigEndian, int64(offset))
	var u uuid.UUID
	copy(u[:], h.Sum(nil))
	ms := uint64(start.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	return u.String()
}
