package models_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/models"
)

// origin serves files over loopback with http.ServeContent, which honours Range, and records the
// Range header of every request. A test may replace how a path is served.
type origin struct {
	*httptest.Server
	mu      sync.Mutex
	files   map[string][]byte
	serve   map[string]func(w http.ResponseWriter, r *http.Request, content []byte)
	ranges  []string // "PATH RANGE" per request
	waiting chan struct{}
}

func newOrigin(t *testing.T) *origin {
	o := &origin{files: map[string][]byte{}, serve: map[string]func(http.ResponseWriter, *http.Request, []byte){}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.ranges = append(o.ranges, r.URL.Path+" "+r.Header.Get("Range"))
		content, ok := o.files[r.URL.Path]
		serve := o.serve[r.URL.Path]
		o.mu.Unlock()
		switch {
		case !ok:
			http.NotFound(w, r)
		case serve != nil:
			serve(w, r, content)
		default:
			http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(content))
		}
	}))
	t.Cleanup(o.Close)
	return o
}

// add serves content at path and returns a catalog file for it, checked by sha256 or, with
// gitBlob set, by git blob id alone with its size not known.
func (o *origin) add(path string, content []byte, gitBlob bool) models.File {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files["/"+path] = content
	f := models.File{Path: path, URLs: []string{o.URL + "/" + path}}
	if gitBlob {
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", len(content))
		h.Write(content)
		f.GitBlob = hex.EncodeToString(h.Sum(nil))
	} else {
		sum := sha256.Sum256(content)
		f.Size, f.SHA256 = int64(len(content)), hex.EncodeToString(sum[:])
	}
	return f
}

// set serves content at path, and serves it with fn when fn is not nil.
func (o *origin) set(path string, content []byte, fn func(w http.ResponseWriter, r *http.Request, content []byte)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if content != nil {
		o.files["/"+path] = content
	}
	o.serve["/"+path] = fn
}

func (o *origin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ranges...)
}

// cutOnce sends the headers of the whole file and half its body the first time, then drops the
// connection; later requests are served normally.
func (o *origin) cutOnce(path string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	first := true
	o.serve["/"+path] = func(w http.ResponseWriter, r *http.Request, content []byte) {
		o.mu.Lock()
		cut := first
		first = false
		o.mu.Unlock()
		if !cut {
			http.ServeContent(w, r, path, time.Time{}, bytes.NewReader(content))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:len(content)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// hang sends half the file, then waits, sending nothing, until the client goes away.
func (o *origin) hang(path string) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	sent := make(chan struct{}, 1)
	o.serve["/"+path] = func(w http.ResponseWriter, r *http.Request, content []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:len(content)/2])
		w.(http.Flusher).Flush()
		sent <- struct{}{}
		<-r.Context().Done()
	}
	return sent
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func fetcher(dir string, progress io.Writer) *models.Fetcher {
	return models.New(models.Config{Dir: dir, Progress: progress, ProgressEvery: time.Nanosecond})
}

// installed asserts that dir holds exactly content at path, and no partial file.
func installed(t *testing.T, dir, path string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("%s: %d bytes differ from the %d served", path, len(got), len(content))
	}
	if _, err := os.Stat(filepath.Join(dir, path+".part")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.part is left: %v", path, err)
	}
}

func TestFetchInstallsVerifiesAndSkips(t *testing.T) {
	o := newOrigin(t)
	big, small := random(1<<20), []byte("{\"model_type\": \"bert\"}\n")
	files := []models.File{o.add("m/onnx/model.onnx", big, true), o.add("m/config.json", small, false)}
	dir := t.TempDir()
	var progress bytes.Buffer
	if err := fetcher(dir, &progress).Fetch(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, "m/onnx/model.onnx", big)
	installed(t, dir, "m/config.json", small)
	for _, want := range []string{"m/onnx/model.onnx: 1.0 MB, git blob verified, from " + o.URL, "m/config.json: 23 B, sha256 verified"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}

	asked := len(o.requests())
	progress.Reset()
	if err := fetcher(dir, &progress).Fetch(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	if n := len(o.requests()); n != asked {
		t.Errorf("a second fetch made %d requests, want none", n-asked)
	}
	if strings.Count(progress.String(), "already installed") != 2 {
		t.Errorf("second fetch said:\n%s", progress.String())
	}
}

func TestFetchResumesAfterConnectionCut(t *testing.T) {
	o := newOrigin(t)
	content := random(1 << 20)
	file := o.add("m/model.onnx", content, false)
	o.cutOnce(file.Path)
	dir := t.TempDir()
	var progress bytes.Buffer
	err := fetcher(dir, &progress).Fetch(context.Background(), []models.File{file})
	if err == nil || !strings.Contains(err.Error(), "where the next fetch resumes") {
		t.Fatalf("first fetch: %v, want the cut reported", err)
	}
	part, err := os.Stat(filepath.Join(dir, file.Path+".part"))
	if err != nil || part.Size() == 0 || part.Size() >= int64(len(content)) {
		t.Fatalf("after the cut: part %v, %v; want some of the file", part, err)
	}
	if _, err := os.Stat(filepath.Join(dir, file.Path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a cut download is under its final name: %v", err)
	}

	if err := fetcher(dir, &progress).Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, file.Path, content)
	reqs := o.requests()
	if want := fmt.Sprintf("/%s bytes=%d-", file.Path, part.Size()); reqs[len(reqs)-1] != want {
		t.Errorf("requests %q, want the last to be %q", reqs, want)
	}
}

func TestFetchStartsOverWhenRangeIsIgnored(t *testing.T) {
	o := newOrigin(t)
	content := random(300 << 10)
	file := o.add("m/model.onnx", content, false)
	o.set(file.Path, nil, func(w http.ResponseWriter, r *http.Request, content []byte) {
		w.Write(content) // 200 with the whole file, whatever the Range
	})
	dir := t.TempDir()
	// A partial file whose bytes are not the file's: appended to, it could never verify.
	if err := os.MkdirAll(filepath.Join(dir, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file.Path+".part"), random(1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fetcher(dir, nil).Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, file.Path, content)
	if reqs := o.requests(); len(reqs) != 1 || reqs[0] != "/m/model.onnx bytes=1000-" {
		t.Errorf("requests %q, want one asking from byte 1000", reqs)
	}
}

func TestFetchRejectsRangeFromElsewhere(t *testing.T) {
	o := newOrigin(t)
	content := random(10 << 10)
	file := o.add("m/model.onnx", content, false)
	o.set(file.Path, nil, func(w http.ResponseWriter, r *http.Request, content []byte) {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(content)-1, len(content)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(content)
	})
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "m"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, file.Path+".part"), content[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	err := fetcher(dir, nil).Fetch(context.Background(), []models.File{file})
	if err == nil || !strings.Contains(err.Error(), "asked for bytes from 100, sent from 0") {
		t.Fatalf("fetch from a server answering another range: %v", err)
	}
}

// serveChunked serves a file without saying its length, as a dynamic server may.
func serveChunked(w http.ResponseWriter, r *http.Request, content []byte) {
	for b := range slices.Chunk(content, 64<<10) {
		w.Write(b)
		w.(http.Flusher).Flush() // before the end, so no Content-Length is sent
	}
}

// A partial file longer than the file cannot be resumed: when the catalog knows the size it is
// dropped at once; otherwise the server answers the range with 416. Either way the download
// starts over, and nothing of the old partial file stays.
func TestFetchStartsOverWhenPartIsTooLong(t *testing.T) {
	for _, sizeKnown := range []bool{true, false} {
		t.Run(fmt.Sprintf("sizeKnown=%v", sizeKnown), func(t *testing.T) {
			o := newOrigin(t)
			content := random(100 << 10)
			file := o.add("m/model.onnx", content, !sizeKnown)
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "m"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, file.Path+".part"), random(len(content)+10), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := fetcher(dir, nil).Fetch(context.Background(), []models.File{file}); err != nil {
				t.Fatal(err)
			}
			installed(t, dir, file.Path, content)
			want := "[/m/model.onnx ]"
			if !sizeKnown {
				want = fmt.Sprintf("[/m/model.onnx bytes=%d- /m/model.onnx ]", len(content)+10)
			}
			if reqs := o.requests(); fmt.Sprint(reqs) != want {
				t.Errorf("requests %q, want %s", reqs, want)
			}
		})
	}
}

// A source whose file is not the catalog's size is given up before any of it is downloaded.
func TestFetchRefusesFileOfOtherSize(t *testing.T) {
	o := newOrigin(t)
	file := o.add("m/model.onnx", random(100<<10), false)
	file.Size++
	dir := t.TempDir()
	err := fetcher(dir, nil).Fetch(context.Background(), []models.File{file})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("the file there has %d bytes, the catalog's %d", file.Size-1, file.Size)) {
		t.Fatalf("fetch of a file of another size: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "m", "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestFetchRejectsWrongContent(t *testing.T) {
	for _, c := range []struct {
		name    string
		gitBlob bool
		serve   func(w http.ResponseWriter, r *http.Request, content []byte)
	}{
		{"sha256", false, nil},
		{"git blob", true, nil},
		{"git blob without Content-Length", true, serveChunked},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newOrigin(t)
			want, served := random(200<<10), random(200<<10)
			file := o.add("m/model.onnx", want, c.gitBlob)
			o.set("m/model.onnx", served, c.serve)
			dir := t.TempDir()
			err := fetcher(dir, nil).Fetch(context.Background(), []models.File{file})
			if !errors.Is(err, models.ErrMismatch) {
				t.Fatalf("fetch of wrong content: %v, want ErrMismatch", err)
			}
			expected := file.SHA256 + file.GitBlob
			for _, s := range []string{"m/model.onnx", expected, o.URL + "/m/model.onnx", string(file.Method())} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			if !regexp.MustCompile(`\b[0-9a-f]{40,64}, expected`).MatchString(err.Error()) {
				t.Errorf("error %q does not give the actual checksum", err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "m", "*"))
			if len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// A git blob id covers the size, so a file known by it alone is checked as it streams when the
// server gives the length, and once it is whole when the server does not.
func TestFetchGitBlobWithoutKnownSize(t *testing.T) {
	o := newOrigin(t)
	content := random(500 << 10)
	withLength := o.add("m/a.onnx", content, true)
	chunked := o.add("m/b.onnx", content, true)
	o.set("m/b.onnx", nil, serveChunked)
	dir := t.TempDir()
	if err := fetcher(dir, nil).Fetch(context.Background(), []models.File{withLength, chunked}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, "m/a.onnx", content)
	installed(t, dir, "m/b.onnx", content)
}

func TestFetchReportsHTTPErrors(t *testing.T) {
	o := newOrigin(t)
	file := o.add("m/model.onnx", []byte("weights"), false)
	o.set("m/model.onnx", nil, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Error(w, "down", http.StatusBadGateway)
	})
	missing := models.File{Path: "m/missing.onnx", SHA256: file.SHA256, URLs: []string{o.URL + "/m/missing.onnx"}}
	dir := t.TempDir()
	err := fetcher(dir, nil).Fetch(context.Background(), []models.File{missing, file})
	if err == nil {
		t.Fatal("fetch of a missing and a failing file succeeded")
	}
	for _, want := range []string{
		"m/missing.onnx: GET " + o.URL + "/m/missing.onnx: 404 Not Found",
		"m/model.onnx: GET " + o.URL + "/m/model.onnx: 502 Bad Gateway: the server failed; try again later",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "m", "*")); len(left) != 0 {
		t.Errorf("failed requests left %v", left)
	}
}

func TestFetchTriesSourcesInOrder(t *testing.T) {
	o := newOrigin(t)
	content := random(100 << 10)
	file := o.add("good/model.onnx", content, false)
	o.set("changed/model.onnx", random(len(content)), nil)
	file.Path = "m/model.onnx"
	file.URLs = []string{o.URL + "/gone/model.onnx", o.URL + "/changed/model.onnx", o.URL + "/good/model.onnx"}
	dir := t.TempDir()
	var progress bytes.Buffer
	if err := fetcher(dir, &progress).Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, file.Path, content)
	if n := strings.Count(progress.String(), "trying the next source"); n != 2 {
		t.Errorf("progress says %d times that it tries the next source, want 2:\n%s", n, progress.String())
	}
}

func TestFetchFromMirror(t *testing.T) {
	o := newOrigin(t)
	content := random(10 << 10)
	file := o.add("site/models/m/model.onnx", content, false)
	file.Path = "m/model.onnx"
	file.URLs = []string{"https://unreachable.invalid/m/model.onnx"}
	dir := t.TempDir()
	f := models.New(models.Config{Dir: dir, Mirror: o.URL + "/site/models/"})
	if err := f.Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, file.Path, content)
}

func TestFetchCancelledKeepsPartForResume(t *testing.T) {
	o := newOrigin(t)
	content := random(1 << 20)
	file := o.add("m/model.onnx", content, false)
	sent := o.hang(file.Path)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sent
		time.Sleep(100 * time.Millisecond) // for the half file to arrive
		cancel()
	}()
	err := fetcher(dir, nil).Fetch(ctx, []models.File{file})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: %v, want context.Canceled", err)
	}
	part, err := os.Stat(filepath.Join(dir, file.Path+".part"))
	if err != nil || part.Size() == 0 {
		t.Fatalf("cancel left part %v, %v; want the bytes that arrived", part, err)
	}
	o.set(file.Path, nil, nil)
	if err := fetcher(dir, nil).Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, file.Path, content)
	if reqs := o.requests(); !strings.HasSuffix(reqs[len(reqs)-1], fmt.Sprintf("bytes=%d-", part.Size())) {
		t.Errorf("requests %q: the second fetch did not resume", reqs)
	}
}

func TestFetchGivesUpOnStalledConnection(t *testing.T) {
	o := newOrigin(t)
	file := o.add("m/model.onnx", random(1<<20), false)
	o.hang(file.Path)
	dir := t.TempDir()
	f := models.New(models.Config{Dir: dir, StallTimeout: 300 * time.Millisecond})
	err := f.Fetch(context.Background(), []models.File{file})
	if err == nil || !strings.Contains(err.Error(), "no data arrived for 300ms") {
		t.Fatalf("stalled fetch: %v, want the stall reported", err)
	}
	if part, err := os.Stat(filepath.Join(dir, file.Path+".part")); err != nil || part.Size() == 0 {
		t.Errorf("stall left part %v, %v; want the bytes that arrived", part, err)
	}
}

// The stall timeout is on silence, not on the whole download.
func TestFetchKeepsSlowDownloadGoing(t *testing.T) {
	o := newOrigin(t)
	content := random(10 << 10)
	file := o.add("m/model.onnx", content, false)
	o.set(file.Path, nil, func(w http.ResponseWriter, r *http.Request, content []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		for b := range slices.Chunk(content, 1<<10) {
			w.Write(b)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	dir := t.TempDir()
	f := models.New(models.Config{Dir: dir, StallTimeout: 200 * time.Millisecond})
	if err := f.Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, file.Path, content)
}

func TestFetchReplacesDamagedInstall(t *testing.T) {
	o := newOrigin(t)
	content := random(50 << 10)
	file := o.add("m/model.onnx", content, false)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "m"), 0o755)
	damaged := append([]byte(nil), content...)
	damaged[1000] ^= 1
	if err := os.WriteFile(filepath.Join(dir, file.Path), damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	if err := fetcher(dir, &progress).Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	installed(t, dir, file.Path, content)
	if !strings.Contains(progress.String(), "downloading it again") {
		t.Errorf("progress does not say the damaged file is replaced:\n%s", progress.String())
	}
}

func TestFetchReportsProgress(t *testing.T) {
	o := newOrigin(t)
	file := o.add("m/model.onnx", random(2<<20), false)
	var progress bytes.Buffer
	if err := fetcher(t.TempDir(), &progress).Fetch(context.Background(), []models.File{file}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`m/model.onnx: [0-9.]+ [kM]B of 2.1 MB \(\d+%\), [0-9.]+ [kM]?B/s\n`).MatchString(progress.String()) {
		t.Errorf("no progress line:\n%s", progress.String())
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hello")
	if err := os.WriteFile(path, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The ids git hash-object and sha256sum give for "hello\n".
	const blob, sum = "ce013625030ba8dba906f756967f9e9ca394464a", "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	for _, c := range []struct {
		name string
		file models.File
		want error
	}{
		{"sha256", models.File{Path: "hello", Size: 6, SHA256: sum}, nil},
		{"git blob", models.File{Path: "hello", GitBlob: blob}, nil},
		{"unverified", models.File{Path: "hello"}, nil},
		{"wrong sha256", models.File{Path: "hello", SHA256: strings.Repeat("0", 64)}, models.ErrMismatch},
		{"wrong git blob", models.File{Path: "hello", GitBlob: strings.Repeat("0", 40)}, models.ErrMismatch},
		{"wrong size", models.File{Path: "hello", Size: 7, SHA256: sum}, models.ErrMismatch},
	} {
		if err := models.Check(path, c.file); !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := models.Check(filepath.Join(dir, "absent"), models.File{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// The shared int8 YOLOv8n is the file the catalog's int8 entry names; its git blob id is the one
// git gave in the source repository.
func TestCheckSharedYOLO(t *testing.T) {
	path := sharedtest.YOLO(t)
	m, err := models.Lookup("yolo")
	if err != nil {
		t.Fatal(err)
	}
	files, err := m.Files("int8")
	if err != nil {
		t.Fatal(err)
	}
	if err := models.Check(path, files[0]); err != nil {
		t.Error(err)
	}
	byBlob := models.File{Path: files[0].Path, GitBlob: "cc35d4076d86e3d2c8773c608ca5346f19c80dfc"}
	if err := models.Check(path, byBlob); err != nil {
		t.Error(err)
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	write := func(path string, content []byte) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, path), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good, bad := []byte("good"), []byte("bad")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	m := models.Model{Name: "m", Dir: "m",
		Common: []models.File{{Path: "m/good.json", SHA256: sum(good)}, {Path: "m/bad.json", SHA256: sum(good)}},
		Precisions: []models.Precision{
			{Name: "a", Files: []models.File{{Path: "m/a.onnx", SHA256: sum(good)}, {Path: "m/free.onnx"}}},
			{Name: "b", Files: []models.File{{Path: "m/b.onnx", SHA256: sum(good)}, {Path: "m/absent.onnx"}}},
		},
	}
	write("m/good.json", good)
	write("m/bad.json", bad)
	write("m/free.onnx", bad)
	write("m/b.onnx.part", bad)
	got := map[string]string{}
	for _, s := range models.Verify(dir, m) {
		got[s.File.Path] = fmt.Sprintf("size %d partial %v mismatch %v", s.Size, s.Partial, errors.Is(s.Err, models.ErrMismatch))
	}
	want := map[string]string{
		"m/good.json": "size 4 partial false mismatch false",
		"m/bad.json":  "size 3 partial false mismatch true",
		"m/free.onnx": "size 3 partial false mismatch false",
		"m/b.onnx":    "size 3 partial true mismatch false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Verify:\n got %v\nwant %v", got, want)
	}
}

func TestCatalog(t *testing.T) {
	hexOf := regexp.MustCompile(`^[0-9a-f]+$`)
	for _, m := range models.Catalog() {
		if _, err := m.Files(""); err != nil {
			t.Errorf("%s: default precision: %v", m.Name, err)
		}
		if _, err := m.Files("fp8"); err == nil || !strings.Contains(err.Error(), m.PrecisionNames()[0]) {
			t.Errorf("%s: unknown precision: %v, want the choices", m.Name, err)
		}
		for _, f := range m.Known() {
			if !strings.HasPrefix(f.Path, m.Dir+"/") {
				t.Errorf("%s: %s is outside %s", m.Name, f.Path, m.Dir)
			}
			if len(f.URLs) == 0 {
				t.Errorf("%s has no source", f.Path)
			}
			for _, u := range f.URLs {
				if !strings.HasPrefix(u, "https://") || !strings.HasSuffix(u, strings.TrimPrefix(f.Path, m.Dir)) {
					t.Errorf("%s: source %s", f.Path, u)
				}
			}
			if (f.SHA256 != "" && (len(f.SHA256) != 64 || !hexOf.MatchString(f.SHA256))) ||
				(f.GitBlob != "" && (len(f.GitBlob) != 40 || !hexOf.MatchString(f.GitBlob))) {
				t.Errorf("%s: malformed checksum %q %q", f.Path, f.SHA256, f.GitBlob)
			}
		}
	}
	// The defaults are fully checked; Florence-2 q4 borrows the q4f16 embed_tokens.
	unverified := map[string]bool{}
	for _, m := range models.Catalog() {
		for _, p := range m.Precisions {
			for _, f := range p.Files {
				if f.Method() == models.Unverified {
					unverified[m.Name+" "+p.Name] = true
				}
			}
		}
	}
	if fmt.Sprint(unverified) != "map[florence fp16:true florence fp32:true florence quantized:true]" {
		t.Errorf("precisions without checksums: %v", unverified)
	}
	florence, _ := models.Lookup("florence")
	q4, _ := florence.Files("q4")
	if !strings.Contains(fmt.Sprint(q4), "florence-2/onnx/embed_tokens_q4f16.onnx") || len(q4) != 14 {
		t.Errorf("florence q4: %d files %v", len(q4), q4)
	}
	if _, err := models.Lookup("whisper"); err == nil {
		t.Error("Lookup of an unknown model succeeded")
	}
}
