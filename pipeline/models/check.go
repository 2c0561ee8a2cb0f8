package models

// This file owns checking a file's content against the catalog, both while it downloads and once
// it is installed.

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrMismatch means that a file's size or content is not what the catalog records.
var ErrMismatch = errors.New("content does not match the catalog")

// partSuffix ends the name a file downloads under until it is whole and verified.
const partSuffix = ".part"

// Check reports whether the file at path is f: f's size where the catalog knows it, then f's
// checksum where it knows one. Its error wraps fs.ErrNotExist when there is no file, and
// ErrMismatch, with the expected and actual values, when the file differs. A file whose checksum
// is not known passes if it exists (see File.Method).
func Check(path string, f File) error {
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		return err
	}
	if f.Size > 0 && st.Size() != f.Size {
		return fmt.Errorf("%s: %w: %d bytes, expected %d", f.Path, ErrMismatch, st.Size(), f.Size)
	}
	sum := newDigest(f, st.Size())
	if sum == nil {
		return nil
	}
	if _, err := io.Copy(sum, r); err != nil {
		return fmt.Errorf("%s: read: %w", path, err)
	}
	return sum.check()
}

// Status is what a models folder holds of one file of the catalog.
type Status struct {
	File File
	// Size is the file's length on disk; for a partial download, how much of it has arrived.
	Size int64
	// Partial is set when only a partial download of the file is there, which the next fetch
	// resumes.
	Partial bool
	// Err is nil when the file matches the catalog (see File.Method for how far that goes);
	// otherwise it wraps ErrMismatch, or says why the file could not be read.
	Err error
}

// Verify checks every file the catalog knows of m, in every precision, that the models folder dir
// holds. Files that are absent are left out; partial downloads are reported, not checked.
func Verify(dir string, m Model) []Status {
	var found []Status
	for _, f := range m.Known() {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			if part, err := os.Stat(path + partSuffix); err == nil {
				found = append(found, Status{File: f, Size: part.Size(), Partial: true})
			}
			continue
		}
		if err != nil {
			found = append(found, Status{File: f, Err: err})
			continue
		}
		found = append(found, Status{File: f, Size: st.Size(), Err: Check(path, f)})
	}
	return found
}

// digest computes the checksum the catalog records for a file as the content streams through it.
type digest struct {
	file File
	hash hash.Hash
}

// newDigest returns a digest of f's content, which is size bytes long (-1 when that is not yet
// known), or nil when none can be computed while streaming: the catalog knows no checksum of f,
// or only its git blob id, whose header needs the size before the content.
func newDigest(f File, size int64) *digest {
	switch f.Method() {
	case SHA256:
		return &digest{f, sha256.New()}
	case GitBlob:
		if size < 0 {
			return nil
		}
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", size)
		return &digest{f, h}
	}
	return nil
}

func (d *digest) Write(p []byte) (int, error) { return d.hash.Write(p) }

// check compares the content seen so far with the catalog.
func (d *digest) check() error {
	want := d.file.SHA256
	if d.file.Method() == GitBlob {
		want = d.file.GitBlob
	}
	if got := hex.EncodeToString(d.hash.Sum(nil)); got != want {
		return fmt.Errorf("%s: %w: %s %s, expected %s", d.file.Path, ErrMismatch, d.file.Method(), got, want)
	}
	return nil
}
