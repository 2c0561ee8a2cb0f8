package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"github.com/vigilcam/vigil/sink/jobs"
	"github.com/vigilcam/vigil/sink/store"
)

func index(ctx context.Context, configPath string, args []string) error {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant the files belong to (default: the configured tenant)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vigil index [--tenant T] FILE...\n\nIndexes each file and returns when its moments are searchable.\n\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no FILE given")}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	if *tenant == "" {
		*tenant = a.cfg.Tenant
	}
	ix, err := a.openIndexing(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for _, path := range fs.Args() {
		out, err := indexOne(ctx, ix, *tenant, path)
		switch {
		case ctx.Err() != nil:
			fmt.Printf("%s: interrupted\n", path)
			return errors.New("interrupted")
		case err != nil:
			failed++
			fmt.Printf("%s: failed: %v\n", path, err)
		case out.Video.Status == store.StatusFailed:
			failed++
			fmt.Printf("%s: failed: %s\n", path, out.Video.Error)
		default:
			fmt.Printf("%s: ready, %d moments (video %d)\n", path, out.Moments, out.Video.ID)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files failed", failed, fs.NArg())
	}
	return nil
}

// indexOne submits a file as a job, the way an upload is, and waits for a worker to finish it.
func indexOne(ctx context.Context, ix *jobs.Indexer, tenant, path string) (jobs.Outcome, error) {
	v, err := ix.Submit(ctx, tenant, path, jobs.Options{Force: true})
	if err != nil {
		return jobs.Outcome{Video: v}, err
	}
	p := newProgressLine(os.Stderr, filepath.Base(path))
	defer p.clear()
	return ix.Wait(ctx, tenant, v.ID, p.update)
}

// progressLine shows a job's progress: one line redrawn in place on a terminal, a line per tenth
// of the way elsewhere (logs, CI).
type progressLine struct {
	w       io.Writer
	name    string
	tty     bool
	started time.Time
	drawn   time.Time
	tenth   int64
}

func newProgressLine(f *os.File, name string) *progressLine {
	return &progressLine{w: f, name: name, tty: term.IsTerminal(int(f.Fd())), started: time.Now(), tenth: -1}
}

func (p *progressLine) update(pr jobs.Progress) {
	pct := int64(0)
	if pr.FramesTotal > 0 {
		pct = min(100, pr.FramesDone*100/pr.FramesTotal)
	}
	if p.tty {
		if time.Since(p.drawn) < 100*time.Millisecond {
			return
		}
		p.drawn = time.Now()
		fmt.Fprintf(p.w, "\r\033[K%s  %d/%d frames  %3d%%  %s", p.name, pr.FramesDone, pr.FramesTotal, pct,
			time.Since(p.started).Round(time.Second))
		return
	}
	if pct/10 > p.tenth {
		p.tenth = pct / 10
		fmt.Fprintf(p.w, "%s: %d/%d frames (%d%%)\n", p.name, pr.FramesDone, pr.FramesTotal, pct)
	}
}

func (p *progressLine) clear() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
