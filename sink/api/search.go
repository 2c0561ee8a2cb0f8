package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/vigilcam/vigil/sink/search"
)

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	q := search.Query{Tenant: tenant, Text: r.URL.Query().Get("q")}
	if k := r.URL.Query().Get("top_k"); k != "" {
		n, err := strconv.Atoi(k)
		if err != nil {
			problem(w, http.StatusBadRequest, "invalid_query", "top_k must be a whole number")
			return
		}
		q.TopK = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	resp, err := s.searcher.Search(ctx, q)
	if err != nil {
		s.fail(w, err)
		return
	}
	reply(w, http.StatusOK, resp)
}
