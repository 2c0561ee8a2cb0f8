//go:build !cgo

package replay

// This file stands in for media_cgo.go in a build without cgo: nothing opens.

// media reads one pass over a file; in this build it never opens.
type media struct {
	info      Info
	codec     codec
	extradata []byte
}

// openMedia returns ErrNoCgo.
func openMedia(string) (*media, error) { return nil, ErrNoCgo }

func (m *media) next() (sample, error) { return sample{}, ErrNoCgo }

func (m *media) corrupt() int64 { return 0 }

func (m *media) close() {}
