package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/sink/api"
	"github.com/vigilcam/vigil/sink/jobs/jobstest"
	"github.com/vigilcam/vigil/sink/store"
)

// uploads is the API in front of the whole indexing path with real parts and one worker.
type uploads struct {
	t   *testing.T
	srv *httptest.Server
	sys jobstest.System
	dir string
}

func newUploads(t *testing.T, maxUpload int64) uploads {
	t.Helper()
	sys := jobstest.Start(t)
	sys.StartWorker(t, 0)
	dir := t.TempDir()
	srv := httptest.NewServer(api.New(api.Config{
		Tenant: "default", UploadDir: dir, MaxUpload: maxUpload, Submitter: sys.Indexer,
	}, sys.Store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return uploads{t: t, srv: srv, sys: sys, dir: dir}
}

// reply is an upload's answer: a video, or a problem.
type reply struct {
	status   int
	location string
	video    store.Video
	code     string
}

func (u uploads) do(req *http.Request) reply {
	u.t.Helper()
	resp, err := u.srv.Client().Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		u.t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, location: resp.Header.Get("Location")}
	if resp.StatusCode >= 400 {
		var p struct{ Code string }
		if err := json.Unmarshal(body, &p); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" {
			u.t.Errorf("%d answer is not a problem document: %s", resp.StatusCode, body)
		}
		r.code = p.Code
		return r
	}
	if err := json.Unmarshal(body, &r.video); err != nil {
		u.t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	return r
}

// raw uploads body as the request body, named by ?name=. A body of unknown length is sent chunked.
func (u uploads) raw(name string, body io.Reader) reply {
	u.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u.srv.URL+"/api/v1/videos?name="+name, body)
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	return u.do(req)
}

// form uploads data as the part named field of a multipart form, after a text field.
func (u uploads) form(field, name string, data []byte) reply {
	u.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("note", "from the test"); err != nil {
		u.t.Fatal(err)
	}
	part, err := mw.CreateFormFile(field, name)
	if err != nil {
		u.t.Fatal(err)
	}
	part.Write(data)
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, u.srv.URL+"/api/v1/videos", &buf)
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return u.do(req)
}

// status follows the Location of an upload until its job ends, the way a client polls, and
// returns the row and each percent it saw.
func (u uploads) status(location string) (v store.Video, percents []float64) {
	u.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		var st struct {
			store.Video
			Percent float64 `json:"percent"`
		}
		if code := get(u.t, u.srv, location, &st); code != http.StatusOK {
			u.t.Fatalf("GET %s: %d", location, code)
		}
		if len(percents) == 0 || percents[len(percents)-1] != st.Percent {
			percents = append(percents, st.Percent)
		}
		if st.Status == store.StatusReady || st.Status == store.StatusFailed {
			return st.Video, percents
		}
		time.Sleep(100 * time.Millisecond)
	}
	u.t.Fatalf("%s did not end within 5 minutes", location)
	return v, percents
}

// files lists what is left in the upload folder, temporary files included.
func (u uploads) files() []string {
	u.t.Helper()
	var out []string
	filepath.WalkDir(u.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	return out
}

func TestUploadEveryClip(t *testing.T) {
	u := newUploads(t, 0)
	media := sharedtest.File(t, "media")
	entries, err := os.ReadDir(media)
	if err != nil {
		t.Fatal(err)
	}
	clips := 0
	for i, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		clips++
		data, err := os.ReadFile(filepath.Join(media, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// Both ways of uploading, by turns.
		var r reply
		if i%2 == 0 {
			r = u.form("file", e.Name(), data)
		} else {
			r = u.raw(e.Name(), bytes.NewReader(data))
		}
		if r.status != http.StatusAccepted || r.video.Status != store.StatusQueued || r.video.Name != e.Name() {
			t.Errorf("%s: %d %+v, want 202 and the video queued", e.Name(), r.status, r.video)
			continue
		}
		if r.location != "/api/v1/videos/"+strconv.FormatInt(r.video.ID, 10) {
			t.Errorf("%s: Location %q", e.Name(), r.location)
		}
		v, percents := u.status(r.location)
		moments, err := u.sys.Store.CountVideoMoments(context.Background(), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s, %d moments, %d/%d frames, percent seen %.0f", e.Name(), v.Status, moments, v.FramesDone, v.FramesTotal, percents)
		// Every clip has something a security camera cares about moving in it, dog.mp4's dog
		// included: the gate passes its head movements and YOLOv8n finds the dog.
		if v.Status != store.StatusReady || moments == 0 || v.FramesDone != v.FramesTotal {
			t.Errorf("%s: %+v with %d moments, want ready with moments", e.Name(), v, moments)
		}
		if last := percents[len(percents)-1]; last != 100 {
			t.Errorf("%s: ready at %g%%", e.Name(), last)
		}
		stored := filepath.Join(u.dir, "default", v.SHA256+strings.ToLower(filepath.Ext(e.Name())))
		if v.Path != stored {
			t.Errorf("%s: stored as %s, want %s", e.Name(), v.Path, stored)
		}
		if got, err := os.ReadFile(stored); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: stored file differs from the upload (%v)", e.Name(), err)
		}

		if e.Name() == "dog.mp4" {
			// The same file again is not indexed again.
			again := u.raw("dog-again.mp4", bytes.NewReader(data))
			if again.status != http.StatusOK || again.video.ID != v.ID || again.video.Status != store.StatusReady {
				t.Errorf("upload of an indexed file again: %d %+v, want 200 and video %d", again.status, again.video, v.ID)
			}
		}
	}
	if clips == 0 {
		t.Fatalf("no clips in %s", media)
	}
	if files := u.files(); len(files) != clips {
		t.Errorf("upload folder holds %v, want one file per clip", files)
	}
}

func TestUploadTooLarge(t *testing.T) {
	const limit = 64 << 10
	u := newUploads(t, limit)
	data, err := os.ReadFile(sharedtest.Clip(t, "dog.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 16<<20)
	for _, c := range []struct {
		name string
		send func() reply
	}{
		{"raw with its length", func() reply { return u.raw("dog.mp4", bytes.NewReader(data)) }},
		// io.MultiReader hides the length, so the limit is found while streaming.
		{"raw chunked", func() reply { return u.raw("dog.mp4", io.MultiReader(bytes.NewReader(data))) }},
		{"multipart", func() reply { return u.form("file", "dog.mp4", data) }},
		{"one byte over", func() reply { return u.raw("dog.mp4", io.MultiReader(bytes.NewReader(data[:limit+1]))) }},
		// Far over: the answer still reaches a client that is busy sending.
		{"16 MiB", func() reply { return u.raw("big.mp4", bytes.NewReader(big)) }},
		{"16 MiB chunked", func() reply { return u.raw("big.mp4", io.MultiReader(bytes.NewReader(big))) }},
		{"16 MiB multipart", func() reply { return u.form("file", "big.mp4", big) }},
	} {
		if r := c.send(); r.status != http.StatusRequestEntityTooLarge || r.code != "too_large" {
			t.Errorf("%s: %d %q, want 413 too_large", c.name, r.status, r.code)
		}
		if files := u.files(); len(files) != 0 {
			t.Errorf("%s: refused upload left %v", c.name, files)
		}
	}
	// At the limit exactly is allowed. The cut clip is no video, which the worker finds.
	r := u.raw("cut.mp4", io.MultiReader(bytes.NewReader(data[:limit])))
	if r.status != http.StatusAccepted {
		t.Fatalf("upload of exactly the limit: %d %q", r.status, r.code)
	}
	if v, _ := u.status(r.location); v.Status != store.StatusFailed || v.Error == "" {
		t.Errorf("cut clip: %+v, want failed with a reason", v)
	}
}

func TestUploadNotAVideoFails(t *testing.T) {
	u := newUploads(t, 0)
	r := u.form("file", "notes.mp4", []byte("these are not the frames you are looking for\n"))
	if r.status != http.StatusAccepted {
		t.Fatalf("upload: %d %q", r.status, r.code)
	}
	v, _ := u.status(r.location)
	if v.Status != store.StatusFailed || !strings.Contains(v.Error, "not a video") {
		t.Errorf("text file: %+v, want failed saying it is not a video", v)
	}
	t.Logf("text file: %s", v.Error)
}

func TestUploadBadRequests(t *testing.T) {
	u := newUploads(t, 0)
	for _, c := range []struct {
		name string
		send func() reply
		code string
	}{
		{"empty raw body", func() reply { return u.raw("clip.mp4", http.NoBody) }, "empty_upload"},
		{"empty file part", func() reply { return u.form("file", "clip.mp4", nil) }, "empty_upload"},
		{"raw without name", func() reply { return u.raw("", strings.NewReader("data")) }, "missing_name"},
		{"raw named ..", func() reply { return u.raw("..", strings.NewReader("data")) }, "missing_name"},
		{"form without file part", func() reply { return u.form("video", "clip.mp4", []byte("data")) }, "missing_file"},
		{"file part without name", func() reply { return u.form("file", "", []byte("data")) }, "missing_name"},
		{"bad tenant", func() reply {
			req, _ := http.NewRequest(http.MethodPost, u.srv.URL+"/api/v1/videos?name=a.mp4&tenant=No!", strings.NewReader("data"))
			return u.do(req)
		}, "tenant_parameter"},
		{"broken form", func() reply {
			req, _ := http.NewRequest(http.MethodPost, u.srv.URL+"/api/v1/videos", strings.NewReader("--x\r\nnonsense"))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
			return u.do(req)
		}, "invalid_upload"},
	} {
		if r := c.send(); r.status != http.StatusBadRequest || r.code != c.code {
			t.Errorf("%s: %d %q, want 400 %s", c.name, r.status, r.code, c.code)
		}
	}
	if files := u.files(); len(files) != 0 {
		t.Errorf("refused uploads left %v", files)
	}
}

func TestUploadsDisabledWithoutSubmitter(t *testing.T) {
	srv, _ := newServer(t)
	resp, err := http.Post(srv.URL+"/api/v1/videos?name=a.mp4", "application/octet-stream", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upload to a server without a submitter: %d, want 503", resp.StatusCode)
	}
}

// FuzzUpload throws arbitrary requests at the upload endpoint: whatever comes, the answer is a
// success or a 400 or 413 problem, never a server error, and nothing but whole uploads, named by
// their hash inside the tenant's folder, is left on disk.
func FuzzUpload(f *testing.F) {
	sys := jobstest.Start(f)
	sys.StartWorker(f, 0)
	dir := f.TempDir()
	h := api.New(api.Config{Tenant: "default", UploadDir: dir, MaxUpload: 4096, Submitter: sys.Indexer},
		sys.Store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	part := func(disposition, data string) []byte {
		return []byte("--x\r\nContent-Disposition: form-data; " + disposition + "\r\n\r\n" + data + "\r\n--x--\r\n")
	}
	f.Add("application/octet-stream", "clip.mp4", []byte("data"))
	f.Add("video/mp4", "../../etc/passwd", []byte("data"))
	f.Add("text/plain", "big.mp4", bytes.Repeat([]byte("x"), 5000))
	f.Add("multipart/form-data; boundary=x", "", part(`name="file"; filename="a.MP4"`, "abc"))
	f.Add("multipart/form-data; boundary=x", "", part(`name="file"; filename="..\\..\\x.mp4"`, "abc"))
	f.Add("multipart/form-data; boundary=x", "", part(`name="file"`, "abc"))
	f.Add("multipart/form-data; boundary=x", "", []byte("--x\r\n"))
	f.Add("multipart/form-data", "", []byte("--"))
	f.Fuzz(func(t *testing.T, contentType, name string, body []byte) {
		// Without a token the API answers requests to this machine only.
		req := httptest.NewRequest(http.MethodPost, "http://localhost/api/v1/videos?name="+url.QueryEscape(name), bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Errorf("%q %q: %d %s", contentType, name, rec.Code, rec.Body)
		}
		hashed := regexp.MustCompile(`^[0-9a-f]{64}(\.[a-z0-9]{1,8})?$`)
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (filepath.Dir(p) != filepath.Join(dir, "default") || !hashed.MatchString(d.Name())) {
				t.Errorf("%q %q left %s", contentType, name, p)
			}
			return err
		})
	})
}
