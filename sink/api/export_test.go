package api

// This file lends the black-box tests the server's routing: what it registered, and which
// route a request would reach.

import (
	"net/http"
	"slices"
)

// Patterns returns the patterns registered on the server, in order.
func (s *Server) Patterns() []string { return slices.Clone(s.mux.patterns) }

// Route returns the pattern of the route that would serve r, without serving it.
func (s *Server) Route(r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	return pattern
}
