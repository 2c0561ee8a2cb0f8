package api

// This file owns uploads: POST /api/v1/videos streams a file into the upload folder while hashing
// it, and hands it to the submitter, which records it as queued and enqueues its index job.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/store"
)

// Submitter records an uploaded file as queued and enqueues its index job; *jobs.Indexer is one.
type Submitter interface {
	Submit(ctx context.Context, tenant, path string, opts jobs.Options) (store.Video, error)
}

const (
	// multipartSlack is what a multipart body may carry besides the file: boundaries, part
	// headers and small form fields.
	multipartSlack = 1 << 20
	// lingerTime bounds the reading of a refused body.
	lingerTime = 5 * time.Second
)

var (
	errTooLarge = errors.New("upload too large")
	errEmpty    = errors.New("empty upload")
	// errRead marks a body that could not be read to its end: the client went away, or sent
	// a broken form.
	errRead = errors.New("read upload")
	// uploadExt is the kind of extension kept on a stored upload; it helps the demuxer guess.
	uploadExt = regexp.MustCompile(`^\.[a-z0-9]{1,8}$`)
)

// upload takes a file as the part named "file" of a multipart form, or as the raw body named by
// ?name=. Neither is buffered: the body is copied to disk as it arrives.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	if s.cfg.Submitter == nil || s.cfg.UploadDir == "" {
		problem(w, http.StatusServiceUnavailable, "uploads_disabled", "this server takes no uploads")
		return
	}
	body := r.Body // uploadSource may put a limit on r.Body; tooLarge drains past it
	src, name, ok := s.uploadSource(w, r)
	if !ok {
		return
	}
	file, sum, err := saveUpload(filepath.Join(s.cfg.UploadDir, tenant), name, src, s.cfg.MaxUpload)
	switch {
	case errors.Is(err, errTooLarge):
		tooLarge(w, body, s.cfg.MaxUpload)
		return
	case errors.Is(err, errEmpty):
		problem(w, http.StatusBadRequest, "empty_upload", "the uploaded file is empty")
		return
	case errors.Is(err, errRead):
		problem(w, http.StatusBadRequest, "upload_interrupted", "the upload ended before the file did")
		return
	case err != nil:
		s.log.Error("upload not stored", "tenant", tenant, "err", err)
		problem(w, http.StatusInternalServerError, "storage", "the upload could not be stored")
		return
	}
	v, err := s.cfg.Submitter.Submit(r.Context(), tenant, file, jobs.Options{Name: name, SHA256: sum})
	if err != nil {
		s.log.Error("upload stored but not queued", "tenant", tenant, "path", file, "err", err)
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "unavailable", "the upload could not be queued; try again shortly")
		return
	}
	w.Header().Set("Location", "/api/v1/videos/"+strconv.FormatInt(v.ID, 10))
	if v.Status == store.StatusReady {
		// The same file was indexed before for this tenant; it is not indexed twice.
		reply(w, http.StatusOK, v)
		return
	}
	s.log.Info("upload queued", "tenant", tenant, "video", v.ID, "name", v.Name)
	reply(w, http.StatusAccepted, v)
}

// uploadSource finds the file in r and its cleaned name; on a bad request it answers it and
// returns false.
func (s *Server) uploadSource(w http.ResponseWriter, r *http.Request) (io.Reader, string, bool) {
	limit := s.cfg.MaxUpload
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "multipart/form-data" {
		name := uploadName(r.URL.Query().Get("name"))
		switch {
		case name == "":
			problem(w, http.StatusBadRequest, "missing_name", "name the file: ?name=clip.mp4, or send a multipart form with a file part")
			return nil, "", false
		case r.ContentLength > limit:
			tooLarge(w, r.Body, limit)
			return nil, "", false
		}
		return r.Body, name, true
	}
	raw := r.Body
	if r.ContentLength > limit+multipartSlack {
		tooLarge(w, raw, limit)
		return nil, "", false
	}
	// Without a ResponseWriter the limit leaves the connection readable, for tooLarge.
	r.Body = http.MaxBytesReader(nil, raw, limit+multipartSlack)
	form, err := r.MultipartReader()
	if err != nil {
		problem(w, http.StatusBadRequest, "invalid_upload", "multipart form: "+err.Error())
		return nil, "", false
	}
	for {
		part, err := form.NextPart()
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			problem(w, http.StatusBadRequest, "missing_file", `the form has no part named "file"`)
			return nil, "", false
		case errors.As(err, &tooBig):
			tooLarge(w, raw, limit)
			return nil, "", false
		case err != nil:
			problem(w, http.StatusBadRequest, "invalid_upload", "multipart form: "+err.Error())
			return nil, "", false
		case part.FormName() != "file":
			continue // other fields are skipped unread
		case uploadName(part.FileName()) == "":
			problem(w, http.StatusBadRequest, "missing_name", `the "file" part has no file name`)
			return nil, "", false
		}
		return part, uploadName(part.FileName()), true
	}
}

// saveUpload copies src, at most limit bytes, into dir under a temporary name while hashing it,
// then renames it to its hash plus the extension of name. Only a whole file ever has its final
// name; on error nothing is left behind. The same content uploaded twice lands on the same file.
func saveUpload(dir, name string, src io.Reader, limit int64) (file, sum string, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", "", err
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return "", "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(src, limit+1))
	var tooBig *http.MaxBytesError
	switch {
	case n > limit, errors.As(err, &tooBig):
		return "", "", errTooLarge
	case err != nil:
		return "", "", fmt.Errorf("%w: %w", errRead, err)
	case n == 0:
		return "", "", errEmpty
	}
	// The file must be on disk before a job that names it is.
	if err := tmp.Sync(); err != nil {
		return "", "", err
	}
	if err := tmp.Close(); err != nil {
		return "", "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	ext := strings.ToLower(path.Ext(name))
	if !uploadExt.MatchString(ext) {
		ext = ""
	}
	file = filepath.Join(dir, sum+ext)
	if err := os.Rename(tmp.Name(), file); err != nil {
		return "", "", err
	}
	return file, sum, nil
}

// uploadName is the base of a client's file name, or "" when there is none worth keeping.
func uploadName(name string) string {
	// Some clients send a whole Windows path.
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == "/" || name == ".." || len(name) > 255 ||
		!utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return ""
	}
	return name
}

// tooLarge answers 413 and closes the connection. A client still sending would have the
// connection reset under it before it read the answer, so, as a lingering close does, the rest of
// the body is read and dropped for a while after the answer is sent.
func tooLarge(w http.ResponseWriter, body io.Reader, limit int64) {
	rc := http.NewResponseController(w)
	// Errors here only mean a writer that cannot linger (a recorder in tests): it just closes.
	rc.EnableFullDuplex()
	w.Header().Set("Connection", "close")
	problem(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("uploads are limited to %d bytes", limit))
	rc.Flush()
	rc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, body)
}
