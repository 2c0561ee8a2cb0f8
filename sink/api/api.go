// Package api owns vigil's HTTP surface: the REST API under /api/v1, the search page, health and
// Prometheus metrics.
package api

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilcam/vigil/sink/search"
	"github.com/vigilcam/vigil/sink/store"
)

//go:embed ui/index.html
var ui embed.FS

// Config configures the API.
type Config struct {
	// Tenant is the tenant of the bootstrap token and, unless AuthRequired, of requests without a
	// token.
	Tenant string
	// AuthRequired refuses API requests without a token. It defaults to false: such requests that
	// address the server by a loopback name or address act as an admin of Tenant.
	AuthRequired bool
	// BootstrapToken, unless empty, acts as an admin of Tenant that may also add tenants and make
	// tokens for any tenant. It defaults to "": none.
	BootstrapToken string
	// Search tunes ranking, plans and each query's deadline.
	Search search.Config
	// Embedder embeds queries for the vector path; nil searches full text only.
	Embedder search.Embedder
	// Cameras reports the live state shown with each camera. It defaults to nil: no state shown.
	Cameras CameraStates
	// UploadDir is where POST /api/v1/videos keeps uploaded files, in a folder per tenant.
	UploadDir string
	// MaxUpload is the largest upload in bytes; a larger one is refused with 413. It defaults to
	// 2 GiB.
	MaxUpload int64
	// Submitter queues uploaded files for indexing. Uploads are refused with 503 unless it and
	// UploadDir are set.
	Submitter Submitter
}

// Server serves the HTTP API.
type Server struct {
	cfg      Config
	store    *store.Store
	searcher *search.Searcher
	log      *slog.Logger
	mux      *router
	// bootstrap is the SHA-256 of the bootstrap token, nil when there is none.
	bootstrap []byte
	// origins refuses changes that a page of another site asks a browser to make here, which
	// requests without a token would otherwise be allowed.
	origins http.CrossOriginProtection
}

// New returns the API's handler; gatherer feeds /metrics.
func New(cfg Config, st *store.Store, gatherer prometheus.Gatherer, log *slog.Logger) *Server {
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 2 << 30
	}
	s := &Server{
		cfg: cfg, store: st, searcher: search.New(st.Pool(), cfg.Embedder, cfg.Search, log), log: log,
		mux: &router{ServeMux: http.NewServeMux()},
	}
	if cfg.BootstrapToken != "" {
		s.bootstrap = hashSecret(cfg.BootstrapToken)
		s.cfg.BootstrapToken = "" // only its hash is needed from here on
	}
	s.searchRoutes()
	s.authRoutes()
	s.mux.HandleFunc("GET /api/v1/videos", s.videos)
	s.mux.HandleFunc("GET /api/v1/videos/{id}", s.video)
	s.mux.HandleFunc("GET /api/v1/moments/{id}", s.moment)
	s.mux.HandleFunc("GET /api/v1/moments/{id}/thumbnail.jpg", s.thumbnail)
	s.mux.HandleFunc("POST /api/v1/videos", s.upload)
	s.mux.HandleFunc("POST /api/v1/cameras", s.addCamera)
	s.mux.HandleFunc("GET /api/v1/cameras", s.cameras)
	s.mux.HandleFunc("GET /api/v1/cameras/{id}", s.camera)
	s.mux.HandleFunc("PATCH /api/v1/cameras/{id}", s.updateCamera)
	s.mux.HandleFunc("DELETE /api/v1/cameras/{id}", s.deleteCamera)
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	s.mux.Handle("GET /metrics", s.allTenants(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeFileFS(w, r, ui, "ui/index.html")
	})
	s.mux.HandleFunc("/", s.noRoute)
	return s
}

// noRoute answers what no pattern takes: 405 with Allow when the path exists under other
// methods (the catch-all keeps ServeMux from saying so itself), else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		other := r.Clone(r.Context())
		other.Method = m
		if _, pattern := s.mux.Handler(other); pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		problem(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path+"; use "+strings.Join(allow, ", "))
		return
	}
	problem(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// router is the server's ServeMux that also keeps the patterns registered on it, so that a test
// can hold them against the OpenAPI document; every route goes through it.
type router struct {
	*http.ServeMux
	patterns []string
}

// Handle registers h for pattern and records the pattern.
func (r *router) Handle(pattern string, h http.Handler) {
	r.patterns = append(r.patterns, pattern)
	r.ServeMux.Handle(pattern, h)
}

// HandleFunc registers h for pattern and records the pattern.
func (r *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, http.HandlerFunc(h))
}

// ServeHTTP finds who the request acts for, once, and turns a panic in a handler into a 500
// problem instead of a dropped connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "path", r.URL.Path, "panic", v)
			problem(w, http.StatusInternalServerError, "internal", "internal error")
		}
	}()
	if err := s.origins.Check(r); err != nil {
		problem(w, http.StatusForbidden, "cross_origin", err.Error())
		return
	}
	if !public(r.URL.Path) {
		p, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) videos(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	vs, err := s.store.Videos(r.Context(), tenant)
	if err != nil {
		s.fail(w, err)
		return
	}
	if vs == nil {
		vs = []store.Video{}
	}
	reply(w, http.StatusOK, map[string]any{"videos": vs})
}

// videoStatus adds progress to a video for status polling.
type videoStatus struct {
	store.Video
	Percent float64 `json:"percent"`
}

func (s *Server) video(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.tenant(w, r)
	if !ok {
		return
	}
	// Video ids are PostgreSQL integers: a larger number is no id at all.
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
	if err != nil || id <= 0 {
		problem(w, http.StatusBadRequest, "invalid_id", "video id must be a whole number from 1 to 2147483647")
		return
	}
	v, err := s.store.Video(r.Context(), tenant, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	st := videoStatus{Video: v}
	if v.Status == store.StatusReady {
		st.Percent = 100
	} else if v.FramesTotal > 0 {
		st.Percent = min(100, float64(v.FramesDone)*100/float64(v.FramesTotal))
	}
	reply(w, http.StatusOK, st)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Pool().Ping(ctx); err != nil {
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "database_unavailable", "PostgreSQL is not answering")
		return
	}
	reply(w, http.StatusOK, map[string]string{"status": "ok"})
}

// fail maps an error to a problem response; unexpected errors are logged, not shown.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, search.ErrInvalid):
		problem(w, http.StatusBadRequest, "invalid_query", err.Error())
	case errors.Is(err, store.ErrNotFound):
		problem(w, http.StatusNotFound, "not_found", "no such video")
	case errors.Is(err, context.DeadlineExceeded):
		problem(w, http.StatusServiceUnavailable, "timeout", "the query took too long")
	default:
		s.log.Error("request failed", "err", err)
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "unavailable", "the database is not answering; try again shortly")
	}
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// problem writes an RFC 9457 problem document with a stable machine-readable code.
func problem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "https://vigil.dev/problems/" + code, "title": http.StatusText(status),
		"status": status, "code": code, "detail": detail,
	})
}
