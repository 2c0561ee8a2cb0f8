package api

// This file owns /api/v1/cameras: registering, listing, changing and removing cameras. Responses
// show a camera's URL with the password redacted and never the password itself.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/sink/store"
)

// CameraStates reports the live state of the cameras this process supervises.
type CameraStates interface {
	// CameraState returns the state of the camera with the given videos row, if it is supervised.
	CameraState(videoID int64) (ingest.State, bool)
}

// maxCameraBody bounds a camera request body; real ones are well under 1 KiB.
const maxCameraBody = 64 << 10

// cameraRequest is the body of POST /api/v1/cameras.
type cameraRequest struct {
	Name          string  `json:"name"`
	URL           string  `json:"url"`
	Username      string  `json:"username"`
	Password      string  `json:"password"`
	AnalysisFPS   float64 `json:"analysis_fps"`
	KeyframesOnly bool    `json:"keyframes_only"`
	Enabled       bool    `json:"enabled"`
	// MotionMask lists areas whose movement is ignored: polygons of {x, y} in fractions of the frame.
	MotionMask []configs.Polygon `json:"motion_mask"`
	// Priority, 0 to 1, lifts the camera's moments in search ranking.
	Priority float64 `json:"priority"`
}

// cameraPatch is the body of PATCH /api/v1/cameras/{id}, a JSON merge patch (RFC 7396).
type cameraPatch struct {
	Name          optional[string]            `json:"name"`
	URL           optional[string]            `json:"url"`
	Username      optional[string]            `json:"username"`
	Password      optional[string]            `json:"password"`
	AnalysisFPS   optional[float64]           `json:"analysis_fps"`
	KeyframesOnly optional[bool]              `json:"keyframes_only"`
	Enabled       optional[bool]              `json:"enabled"`
	MotionMask    optional[[]configs.Polygon] `json:"motion_mask"`
	Priority      optional[float64]           `json:"priority"`
}

func (p cameraPatch) patch() store.CameraPatch {
	return store.CameraPatch{
		Name: p.Name.change(""), URL: p.URL.change(""),
		Username: p.Username.change(""), Password: p.Password.change(""),
		AnalysisFPS: p.AnalysisFPS.change(0), KeyframesOnly: p.KeyframesOnly.change(false),
		Enabled: p.Enabled.change(true), MotionMask: p.MotionMask.change(nil), Priority: p.Priority.change(0),
	}
}

// optional is a field of a merge patch: absent leaves the setting alone, null resets it.
type optional[T any] struct {
	set, null bool
	v         T
}

func (o *optional[T]) UnmarshalJSON(data []byte) error {
	o.set = true
	if string(data) == "null" {
		o.null = true
		return nil
	}
	return json.Unmarshal(data, &o.v)
}

// change is what the patch sets the field to: nil when absent, reset when null.
func (o optional[T]) change(reset T) *T {
	switch {
	case !o.set:
		return nil
	case o.null:
		return &reset
	}
	return &o.v
}

// cameraView is a camera as the API shows it, with its live state inline when this server knows it.
type cameraView struct {
	store.Camera
	*ingest.State
}

func (s *Server) view(c store.Camera) cameraView {
	v := cameraView{Camera: c}
	if s.cfg.Cameras != nil {
		if st, ok := s.cfg.Cameras.CameraState(c.ID); ok {
			v.State = &st
		}
	}
	return v
}

func (s *Server) addCamera(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	req := cameraRequest{Enabled: true}
	if !decodeBody(w, r, &req) {
		return
	}
	c, err := s.store.AddCamera(r.Context(), tenant, store.CameraSpec{
		Name: req.Name, URL: req.URL, Username: req.Username, Password: req.Password,
		AnalysisFPS: req.AnalysisFPS, KeyframesOnly: req.KeyframesOnly, Enabled: req.Enabled,
		MotionMask: req.MotionMask, Priority: req.Priority,
	})
	if err != nil {
		s.cameraFail(w, err)
		return
	}
	s.log.Info("camera added", "camera", c.Name, "tenant", tenant, "video", c.ID, "url", c.URL)
	w.Header().Set("Location", "/api/v1/cameras/"+strconv.FormatInt(c.ID, 10))
	reply(w, http.StatusCreated, s.view(c))
}

func (s *Server) cameras(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	cams, err := s.store.Cameras(r.Context(), tenant)
	if err != nil {
		s.fail(w, err)
		return
	}
	views := make([]cameraView, 0, len(cams))
	for _, c := range cams {
		views = append(views, s.view(c))
	}
	reply(w, http.StatusOK, map[string]any{"cameras": views})
}

func (s *Server) camera(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	id, ok := cameraID(w, r)
	if !ok {
		return
	}
	c, err := s.store.Camera(r.Context(), tenant, id)
	if err != nil {
		s.cameraFail(w, err)
		return
	}
	reply(w, http.StatusOK, s.view(c))
}

func (s *Server) updateCamera(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	id, ok := cameraID(w, r)
	if !ok {
		return
	}
	var p cameraPatch
	if !decodeBody(w, r, &p) {
		return
	}
	c, err := s.store.UpdateCamera(r.Context(), tenant, id, p.patch())
	if err != nil {
		s.cameraFail(w, err)
		return
	}
	s.log.Info("camera changed", "camera", c.Name, "tenant", tenant, "video", c.ID, "url", c.URL)
	reply(w, http.StatusOK, s.view(c))
}

func (s *Server) deleteCamera(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	id, ok := cameraID(w, r)
	if !ok {
		return
	}
	if err := s.store.DeleteCamera(r.Context(), tenant, id); err != nil {
		s.cameraFail(w, err)
		return
	}
	s.log.Info("camera removed", "tenant", tenant, "video", id)
	w.WriteHeader(http.StatusNoContent)
}

// cameraID reads the camera id from the path; false when it answered with a problem.
func cameraID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	// Video ids are PostgreSQL integers: a larger number is no id at all.
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
	if err != nil || id <= 0 {
		problem(w, http.StatusBadRequest, "invalid_id", "camera id must be a whole number from 1 to 2147483647")
		return 0, false
	}
	return id, true
}

// decodeBody decodes a request body holding one JSON object with no unknown fields, or answers
// with a problem. Its messages name fields, never values, which may be passwords.
func decodeBody(w http.ResponseWriter, r *http.Request, into any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCameraBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(into)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("body must hold a single JSON object")
		}
	}
	var (
		large     *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		return true
	case errors.As(err, &large):
		problem(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body must be at most %d bytes", large.Limit))
		return false
	case errors.Is(err, io.EOF):
		err = errors.New("body must be a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = errors.New("body is not valid JSON: it ends early")
	case errors.As(err, &syntax):
		err = fmt.Errorf("body is not valid JSON at byte %d", syntax.Offset)
	case errors.As(err, &wrongType) && wrongType.Field == "":
		err = errors.New("body must be a JSON object")
	case errors.As(err, &wrongType):
		err = fmt.Errorf("%s must not be a JSON %s", wrongType.Field, wrongType.Value)
	}
	problem(w, http.StatusBadRequest, "invalid_body", strings.TrimPrefix(err.Error(), "json: "))
	return false
}

// cameraFail maps a camera registry error to a problem response.
func (s *Server) cameraFail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrInvalid):
		problem(w, http.StatusBadRequest, "invalid_camera", err.Error())
	case errors.Is(err, store.ErrConflict):
		problem(w, http.StatusConflict, "camera_exists", err.Error())
	case errors.Is(err, store.ErrConfigured):
		problem(w, http.StatusConflict, "camera_configured", err.Error())
	case errors.Is(err, store.ErrNotFound):
		problem(w, http.StatusNotFound, "not_found", "no such camera")
	default:
		s.fail(w, err)
	}
}
