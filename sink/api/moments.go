package api

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/vigilcam/vigil/sink/store"
)

// momentView is a moment with the address of its thumbnail.
type momentView struct {
	store.Moment
	// ThumbnailURL is absent while the moment has no thumbnail.
	ThumbnailURL string `json:"thumbnail_url,omitempty"`
}

// momentID reads the moment ID from the path; false when it answered with a problem.
func momentID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		problem(w, http.StatusBadRequest, "invalid_id", "moment id must be a UUID")
		return "", false
	}
	return id.String(), true
}

func (s *Server) moment(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	id, ok := momentID(w, r)
	if !ok {
		return
	}
	m, err := s.store.Moment(r.Context(), tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		problem(w, http.StatusNotFound, "not_found", "no such moment")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	v := momentView{Moment: m}
	if m.ThumbnailWidth > 0 {
		v.ThumbnailURL = "/api/v1/moments/" + id + "/thumbnail.jpg"
	}
	reply(w, http.StatusOK, v)
}

// thumbnail serves a moment's JPEG. The best frame of an open moment can still change, so
// browsers keep it a minute and then revalidate it by its ETag.
func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	id, ok := momentID(w, r)
	if !ok {
		return
	}
	img, updated, err := s.store.Thumbnail(r.Context(), tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		problem(w, http.StatusNotFound, "not_found", "no thumbnail for this moment")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=60")
	w.Header().Set("ETag", `"`+strconv.FormatInt(updated.UnixNano(), 36)+`"`)
	http.ServeContent(w, r, "thumbnail.jpg", updated, bytes.NewReader(img))
}
