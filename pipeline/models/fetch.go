package models

// This file owns downloading: a file arrives as <name>.part, resumes from there after an
// interruption, and takes its final name only once it is whole, synced and verified.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config configures a Fetcher.
type Config struct {
	// Dir is the models folder: a file goes to Dir/File.Path.
	Dir string
	// Mirror, when set, replaces every source: a file is fetched from Mirror/File.Path, the layout
	// of a models folder, so that a site without internet access can serve a copy of one over
	// HTTP. It defaults to "".
	Mirror string
	// StallTimeout is how long a download may go without a byte arriving before it is given up;
	// the partial file stays for the next fetch. A download as a whole has no time limit. It
	// defaults to 60 seconds.
	StallTimeout time.Duration
	// Progress receives a line for each file installed or skipped and, while a download lasts,
	// a line on how far it is. It defaults to io.Discard.
	Progress io.Writer
	// ProgressEvery is the least time between two progress lines of one download. It defaults to
	// 1 second.
	ProgressEvery time.Duration
}

// Fetcher installs files of the catalog into a models folder.
type Fetcher struct {
	cfg Config
}

// New returns a Fetcher.
func New(cfg Config) *Fetcher {
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = time.Minute
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	cfg.Mirror = strings.TrimSuffix(cfg.Mirror, "/")
	return &Fetcher{cfg: cfg}
}

// Fetch installs files, skipping each that is already installed and verifies. A file that no
// source delivers intact does not stop the others; the error names every such file, with the URL
// and what went wrong. Cancelling ctx stops at once and leaves the partial file for the next Fetch
// to resume.
func (f *Fetcher) Fetch(ctx context.Context, files []File) error {
	var errs []error
	for _, file := range files {
		if err := f.fetch(ctx, file); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f *Fetcher) fetch(ctx context.Context, file File) error {
	final := filepath.Join(f.cfg.Dir, filepath.FromSlash(file.Path))
	err := Check(final, file)
	if err == nil {
		fmt.Fprintf(f.cfg.Progress, "%s: already installed, %s\n", file.Path, verdict(file))
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(f.cfg.Progress, "%v: downloading it again\n", err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	urls := file.URLs
	if f.cfg.Mirror != "" {
		urls = []string{f.cfg.Mirror + "/" + file.Path}
	}
	var errs []error
	for i, url := range urls {
		err := f.download(ctx, url, final, file)
		if err == nil || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
		if i < len(urls)-1 {
			fmt.Fprintf(f.cfg.Progress, "%v; trying the next source\n", err)
		}
	}
	return errors.Join(errs...)
}

// download fetches file from url into final+".part", resuming what an earlier attempt left
// there, and renames it to final once it is whole and verified. A partial file stays for the next
// attempt unless its content proved wrong.
func (f *Fetcher) download(parent context.Context, url, final string, file File) (err error) {
	part := final + partSuffix
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// Two fetches appending to one partial file would corrupt it.
	if err := syscall.Flock(int(out.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		out.Close()
		return fmt.Errorf("%s: another fetch is downloading it (%s is locked)", file.Path, part)
	}
	defer func() {
		// An attempt that got nothing, such as a 404, leaves nothing behind.
		if st, statErr := out.Stat(); err != nil && statErr == nil && st.Size() == 0 {
			os.Remove(part)
		}
		out.Close()
	}()
	have, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if file.Size > 0 && have > file.Size {
		have = 0 // longer than the file, so not a prefix of it
	}

	// The watchdog runs from the request on and is rearmed by every byte that arrives, so a stalled
	// connection is given up while a slow but moving download never is.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stall := time.AfterFunc(f.cfg.StallTimeout, func() {
		cancel(fmt.Errorf("no data arrived for %s", f.cfg.StallTimeout))
	})
	defer stall.Stop()
	failed := func(at int64, err error) error {
		if cause := context.Cause(ctx); cause != nil {
			err = cause // clearer than the transport's wording of the same event
		}
		if at > 0 {
			return fmt.Errorf("%s: GET %s: stopped at %s, where the next fetch resumes: %w", file.Path, url, FormatSize(at), err)
		}
		return fmt.Errorf("%s: GET %s: %w", file.Path, url, err)
	}

	start, total := have, file.Size
	var body io.Reader = http.NoBody
	if file.Size == 0 || have < file.Size { // else the partial file is whole: only its check is left
		resp, from, length, err := get(ctx, url, have)
		if err != nil {
			return failed(have, err)
		}
		defer resp.Body.Close()
		start, total, body = from, length, resp.Body
	}
	if file.Size > 0 && total >= 0 && total != file.Size {
		return failed(0, fmt.Errorf("the file there has %d bytes, the catalog's %d", total, file.Size))
	}
	size := total
	if file.Size > 0 {
		size = file.Size
	}
	// Keep only the bytes the response continues (none when the server sends the whole file).
	if err := out.Truncate(start); err != nil {
		return err
	}
	if _, err := out.Seek(start, io.SeekStart); err != nil {
		return err
	}
	sum := newDigest(file, size)
	w := io.MultiWriter(out, f.progress(file, start, size))
	if sum != nil {
		if _, err := io.Copy(sum, io.NewSectionReader(out, 0, start)); err != nil {
			return fmt.Errorf("%s: read: %w", part, err)
		}
		w = io.MultiWriter(w, sum)
	}
	began := time.Now()
	stall.Reset(f.cfg.StallTimeout)
	n, err := io.CopyBuffer(w, stallReader{body, stall, f.cfg.StallTimeout}, make([]byte, 256<<10))
	got := start + n
	if err != nil {
		return failed(got, err)
	}
	if size >= 0 && got != size {
		return failed(got, fmt.Errorf("the body ended after %d of %d bytes", got, size))
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if sum != nil {
		err = sum.check()
	} else {
		err = Check(part, file) // only the finished file tells a git blob's size here
	}
	if err != nil {
		os.Remove(part)
		return fmt.Errorf("%w (downloaded from %s, and removed)", err, url)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(part, final); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return err
	}
	took := ""
	if secs := time.Since(began).Seconds(); secs >= 1 {
		took = fmt.Sprintf(" in %.0f s (%s/s)", secs, FormatSize(int64(float64(n)/secs)))
	}
	fmt.Fprintf(f.cfg.Progress, "%s: %s%s, %s, from %s\n", file.Path, FormatSize(got), took, verdict(file), url)
	return nil
}

// get requests url from byte offset from on. It returns the response, the offset its body starts
// at (0 when the server sends the whole file, whatever was asked) and the file's length, -1 when
// the server does not say.
func get(ctx context.Context, url string, from int64) (*http.Response, int64, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp, 0, resp.ContentLength, nil
	case http.StatusPartialContent:
		start, total, err := contentRange(resp.Header.Get("Content-Range"))
		if err == nil && start != from {
			err = fmt.Errorf("asked for bytes from %d, sent from %d", from, start)
		}
		if err != nil {
			resp.Body.Close()
			return nil, 0, 0, err
		}
		return resp, start, total, nil
	case http.StatusRequestedRangeNotSatisfiable:
		// The partial file is as long as the source's file or longer: the file changed, or the
		// partial one is whole but was never checked. Either way, start over.
		resp.Body.Close()
		return get(ctx, url, 0)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, 0, 0, fmt.Errorf("%s: the source has no such file", resp.Status)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, 0, 0, fmt.Errorf("%s: the source (or a proxy) refuses the download", resp.Status)
	case resp.StatusCode >= 500:
		return nil, 0, 0, fmt.Errorf("%s: the server failed; try again later", resp.Status)
	}
	return nil, 0, 0, fmt.Errorf("unexpected answer %s", resp.Status)
}

// contentRange parses a Content-Range header, "bytes START-END/TOTAL", where TOTAL may be "*".
func contentRange(h string) (start, total int64, err error) {
	var end int64
	var length string
	if _, err := fmt.Sscanf(h, "bytes %d-%d/%s", &start, &end, &length); err != nil {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", h)
	}
	if length == "*" {
		return start, -1, nil
	}
	total, err = strconv.ParseInt(length, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", h)
	}
	return start, total, nil
}

// stallReader rearms a watchdog whenever data arrives.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	after time.Duration
}

func (s stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.after)
	}
	return n, err
}

// progress returns a writer that counts a download's bytes and says how far it is, at most once
// per ProgressEvery, so a terminal and a log both stay readable.
func (f *Fetcher) progress(file File, have, size int64) io.Writer {
	now := time.Now()
	return &progress{w: f.cfg.Progress, name: file.Path, every: f.cfg.ProgressEvery, start: now, last: now,
		have: have, size: size}
}

type progress struct {
	w           io.Writer
	name        string
	every       time.Duration
	start, last time.Time
	have, done  int64 // bytes there before this attempt, and arrived since
	size        int64 // -1 when not known
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return len(b), nil
	}
	p.last = now
	at, rate := p.have+p.done, FormatSize(int64(float64(p.done)/now.Sub(p.start).Seconds()))
	if p.size > 0 {
		fmt.Fprintf(p.w, "%s: %s of %s (%d%%), %s/s\n", p.name, FormatSize(at), FormatSize(p.size), at*100/p.size, rate)
	} else {
		fmt.Fprintf(p.w, "%s: %s, %s/s\n", p.name, FormatSize(at), rate)
	}
	return len(b), nil
}

// verdict says how far a file that passed Check was verified.
func verdict(f File) string {
	if f.Method() == Unverified {
		return "unverified (no checksum is known)"
	}
	return string(f.Method()) + " verified"
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// FormatSize writes a byte count for people: "90.4 MB".
func FormatSize(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
