package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/vigilcam/vigil/sink/search"
)

func (s *Server) searchRoutes() {
	s.mux.HandleFunc("GET /api/v1/search", s.search)
	s.mux.HandleFunc("GET /api/v1/search/why", s.why)
	s.mux.HandleFunc("GET /api/v1/search/synonyms", s.synonyms)
	s.mux.HandleFunc("PUT /api/v1/search/synonyms", s.setSynonyms)
	s.mux.HandleFunc("GET /api/v1/search/pins", s.pins)
	s.mux.HandleFunc("PUT /api/v1/search/pins", s.setPins)
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	q, err := search.ParseQuery(tenant, r.URL.Query(), time.Now())
	if err != nil {
		s.fail(w, err)
		return
	}
	resp, err := s.searcher.Search(r.Context(), q)
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, http.StatusOK, resp)
}

// why says why a moment did or did not come back for a query: the query's parameters, plus
// moment_id.
func (s *Server) why(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	q, err := search.ParseQuery(tenant, r.URL.Query(), time.Now())
	if err != nil {
		s.fail(w, err)
		return
	}
	id, err := uuid.Parse(r.URL.Query().Get("moment_id"))
	if err != nil {
		problem(w, http.StatusBadRequest, "invalid_id", "moment_id must be a moment's UUID")
		return
	}
	why, err := s.searcher.Why(r.Context(), q, id.String())
	if errors.Is(err, search.ErrNotFound) {
		problem(w, http.StatusNotFound, "not_found", "no such moment")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, http.StatusOK, why)
}

// synonymList is the body of the synonym endpoints.
type synonymList struct {
	Groups [][]string `json:"groups"`
}

func (s *Server) synonyms(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	groups, err := s.searcher.Synonyms(r.Context(), tenant)
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, http.StatusOK, synonymList{Groups: groups})
}

// setSynonyms replaces the tenant's synonym groups; an empty list restores the defaults.
func (s *Server) setSynonyms(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	var body synonymList
	if !decodeBody(w, r, &body) {
		return
	}
	if err := s.searcher.SetSynonyms(r.Context(), tenant, body.Groups); err != nil {
		s.bodyFail(w, err)
		return
	}
	s.synonyms(w, r)
}

// pinList is the body of the pin endpoints: moments pinned to a query, in order.
type pinList struct {
	Query   string   `json:"query"`
	Moments []string `json:"moment_ids"`
}

func (s *Server) pins(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	pins, err := s.searcher.Pins(r.Context(), tenant)
	if err != nil {
		s.fail(w, err)
		return
	}
	list := []pinList{}
	for q, ids := range pins {
		list = append(list, pinList{Query: q, Moments: ids})
	}
	reply(w, http.StatusOK, map[string]any{"pins": list})
}

// setPins pins moments to a query, replacing its pins; no moments unpins it.
func (s *Server) setPins(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.admin(w, r)
	if !ok {
		return
	}
	var body pinList
	if !decodeBody(w, r, &body) {
		return
	}
	if err := s.searcher.SetPins(r.Context(), tenant, body.Query, body.Moments); err != nil {
		s.bodyFail(w, err)
		return
	}
	s.pins(w, r)
}

// bodyFail answers an admin change the search refused as a bad body.
func (s *Server) bodyFail(w http.ResponseWriter, err error) {
	if errors.Is(err, search.ErrInvalid) {
		problem(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	s.fail(w, err)
}
