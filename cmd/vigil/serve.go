package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigilcam/vigil/sink/api"
	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/store"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// videoExts are the files serve --index picks from a folder; files named one by one are always tried.
var videoExts = map[string]bool{".mp4": true, ".m4v": true, ".mov": true, ".mkv": true, ".avi": true,
	".webm": true, ".ts": true, ".mpg": true, ".mpeg": true, ".flv": true, ".wmv": true, ".3gp": true}

func serve(ctx context.Context, configPath string, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var paths stringList
	fs.Var(&paths, "index", "index this `file or folder` after start-up, skipping files already indexed (repeatable)")
	tenant := fs.String("tenant", "", "tenant for --index (default: the configured tenant)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	if *tenant == "" {
		*tenant = a.cfg.Tenant
	}
	files, err := videoFiles(paths)
	if err != nil {
		return err
	}
	ix, err := a.openIndexing(ctx)
	if err != nil {
		return err
	}
	cams, err := a.startCameras(ctx)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", a.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	srv := &http.Server{
		Handler: api.New(api.Config{
			Tenant:         a.cfg.Tenant,
			AuthRequired:   a.cfg.Auth.Required,
			BootstrapToken: a.cfg.Auth.BootstrapToken,
			Search:         a.searchConfig(),
			Embedder:       searchEmbedder(a),
			UploadDir:      filepath.Join(a.cfg.DataDir, "uploads"),
			MaxUpload:      a.cfg.Uploads.MaxBytes,
			Submitter:      ix,
			Cameras:        cams,
		}, a.store, a.reg, a.log),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	a.log.Info("vigil is up", "search_page", base+"/", "search_api", base+"/api/v1/search?q=car",
		"metrics", base+"/metrics", "nats", a.bus.ServerURL())
	fmt.Printf("vigil is serving\n  search page: %s/\n  search API:  %s/api/v1/search?q=car\n  uploads:     POST %s/api/v1/videos\n", base, base, base)

	go submitAll(ctx, a, ix, *tenant, files)
	select {
	case err = <-served:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// submitAll queues files for the worker, skipping those already indexed; a file that cannot be
// queued does not stop the rest.
func submitAll(ctx context.Context, a *app, ix *jobs.Indexer, tenant string, files []string) {
	for _, f := range files {
		log := a.log.With("file", f)
		v, err := ix.Submit(ctx, tenant, f, jobs.Options{})
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("not queued for indexing", "err", err)
		case v.Status == store.StatusReady:
			log.Info("already indexed", "video", v.ID)
		case v.Status == store.StatusFailed:
			log.Warn("indexing failed", "video", v.ID, "err", v.Error)
		default:
			log.Info("queued for indexing", "video", v.ID)
		}
	}
}

// videoFiles expands folders to the video files in them, sorted; a missing path is an error.
func videoFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var found []string
		for _, e := range entries {
			if !e.IsDir() && videoExts[strings.ToLower(filepath.Ext(e.Name()))] {
				found = append(found, filepath.Join(p, e.Name()))
			}
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}
