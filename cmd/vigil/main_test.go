package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilcam/vigil/configs/sharedtest"
	"github.com/vigilcam/vigil/pipeline/onnx/onnxtest"
)

// TestMain lets the test binary stand in for vigil: with VIGIL_TEST_RUN_MAIN set it runs main, so
// the tests below drive the real command line, processes and all, without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cli runs vigil commands against one data folder on the embedded defaults: a private PostgreSQL
// cluster that vigil creates itself, and an embedded NATS server.
type cli struct {
	t        *testing.T
	env      []string
	dataDir  string
	api      string // HTTP listen address
	natsAddr string // embedded NATS listen address
}

func newCLI(t *testing.T) *cli {
	// Not t.TempDir: under root the cluster runs as the postgres user, who must pass through every
	// parent of the data folder, and t.TempDir's parents are private.
	dir, err := os.MkdirTemp("", "vigil-cli-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &cli{t: t, dataDir: dir, api: "127.0.0.1:" + freePort(t), natsAddr: "127.0.0.1:" + freePort(t)}
	c.env = append(os.Environ(),
		"VIGIL_TEST_RUN_MAIN=1",
		"VIGIL_DATA_DIR="+dir,
		"VIGIL_HTTP_ADDR="+c.api,
		"VIGIL_NATS_EMBEDDED_LISTEN="+c.natsAddr,
		"VIGIL_DATABASE_URL=", "VIGIL_NATS_URL=", "VIGIL_CONFIG=",
	)
	return c
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func (c *cli) command(extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append([]string(nil), c.env...), extraEnv...)
	return cmd
}

// run runs a command to its end and returns its stdout and exit code; stderr goes to the test log.
func (c *cli) run(extraEnv []string, args ...string) (string, int) {
	c.t.Helper()
	cmd := c.command(extraEnv, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		c.t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
	}
	c.t.Logf("vigil %s → %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return stdout.String(), code
}

// serve starts `vigil serve` and returns once it prints its URLs; it is interrupted at cleanup,
// and must then exit cleanly.
func (c *cli) serve() {
	c.t.Helper()
	cmd := c.command(nil, "serve")
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "search API:") {
				up <- sc.Text()
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case line := <-up:
		if !strings.Contains(line, "http://"+c.api+"/api/v1/search") {
			c.t.Errorf("serve announced %q, want the search endpoint on %s", line, c.api)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		c.t.Fatalf("serve did not come up:\n%s", stderr.String())
	}
	c.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				c.t.Errorf("serve did not stop cleanly: %v\n%s", err, stderr.String())
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			c.t.Errorf("serve ignored SIGINT:\n%s", stderr.String())
		}
	})
}

func (c *cli) get(path string, into any) int {
	c.t.Helper()
	resp, err := http.Get("http://" + c.api + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

// searchReply is the documented search contract, decoded strictly so a renamed field fails.
type searchReply struct {
	Results []struct {
		MomentID  string         `json:"moment_id"`
		VideoID   int64          `json:"video_id"`
		Source    string         `json:"source"`
		StartS    float64        `json:"start_s"`
		EndS      float64        `json:"end_s"`
		StartedAt time.Time      `json:"started_at"`
		EndedAt   time.Time      `json:"ended_at"`
		Caption   string         `json:"caption"`
		Objects   map[string]int `json:"objects"`
		Score     float64        `json:"score"`
		Snippet   string         `json:"snippet"`
		Thumbnail string         `json:"thumbnail_url"`
		Pinned    bool           `json:"pinned"`
	} `json:"results"`
	Degraded   []string `json:"degraded"`
	NextCursor string   `json:"next_cursor"`
}

func decodeStrict(t *testing.T, data string, into any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

// TestCommandLineOnEmbeddedDefaults is the README's main job in small: with no configuration,
// index a clip, search it from the command line and over HTTP, survive bad input, and switch to
// "external" servers by URL.
func TestCommandLineOnEmbeddedDefaults(t *testing.T) {
	onnxtest.Init(t) // skips, naming the library, when ONNX Runtime is absent
	clip := sharedtest.Clip(t, "car-detection.mp4")
	sharedtest.YOLO(t)
	c := newCLI(t)

	if _, code := c.run(nil, "no-such-command"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if _, code := c.run(nil, "index"); code != 2 {
		t.Errorf("index without FILE: exit %d, want 2", code)
	}

	out, code := c.run(nil, "index", clip)
	if code != 0 || !strings.Contains(out, "ready") {
		t.Fatalf("index %s: exit %d, output %q", clip, code, out)
	}

	out, code = c.run(nil, "search", "--json", "--top-k", "5", "car")
	if code != 0 {
		t.Fatalf("search: exit %d", code)
	}
	var cliReply searchReply
	decodeStrict(t, out, &cliReply)
	if len(cliReply.Results) == 0 || cliReply.Results[0].Objects["car"] == 0 || cliReply.Degraded == nil {
		t.Errorf("search car: %+v", cliReply)
	}

	notVideo := filepath.Join(t.TempDir(), "notes.mp4")
	if err := os.WriteFile(notVideo, []byte("not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = c.run(nil, "index", notVideo)
	if code != 1 || !strings.Contains(out, "failed: ") {
		t.Errorf("index of a text file: exit %d, output %q; want exit 1 and the reason", code, out)
	}

	c.serve()
	var httpReply searchReply
	if status := c.get("/api/v1/search?q=car&top_k=5", &httpReply); status != http.StatusOK {
		t.Fatalf("GET search: %d", status)
	}
	if len(httpReply.Results) != len(cliReply.Results) || httpReply.Results[0].MomentID != cliReply.Results[0].MomentID {
		t.Errorf("HTTP and CLI disagree:\nhttp %+v\ncli  %+v", httpReply, cliReply)
	}
	var videos struct {
		Videos []struct {
			Name, Status, Error string
		}
	}
	c.get("/api/v1/videos", &videos)
	statuses := map[string]string{}
	for _, v := range videos.Videos {
		statuses[v.Name] = v.Status
		if v.Status == "failed" && v.Error == "" {
			t.Errorf("video %s failed without a reason", v.Name)
		}
	}
	if statuses["car-detection.mp4"] != "ready" || statuses["notes.mp4"] != "failed" {
		t.Errorf("videos: %+v", videos)
	}

	// A file uploaded to serve is indexed in the background by serve's own worker.
	dog, err := os.ReadFile(sharedtest.Clip(t, "dog.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+c.api+"/api/v1/videos?name=dog.mp4", "video/mp4", bytes.NewReader(dog))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || location == "" {
		t.Fatalf("upload: %d, Location %q", resp.StatusCode, location)
	}
	var upload struct {
		Status  string
		Percent float64
	}
	for deadline := time.Now().Add(3 * time.Minute); upload.Status != "ready" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		c.get(location, &upload)
		if upload.Status == "failed" {
			break
		}
	}
	if upload.Status != "ready" || upload.Percent != 100 {
		t.Errorf("uploaded dog.mp4 ended %+v, want ready at 100%%", upload)
	}

	// While serve owns the cluster and the NATS server, another process reaches them as external
	// servers by URL, the way a second machine would.
	url := fmt.Sprintf("postgres://vigil@/vigil?host=%s&port=5433&sslmode=disable", filepath.Join(c.dataDir, "pg", "run"))
	external := []string{"VIGIL_DATABASE_URL=" + url, "VIGIL_NATS_URL=nats://" + c.natsAddr, "VIGIL_DATA_DIR=/nonexistent/vigil"}
	out, code = c.run(external, "doctor")
	if code != 0 || !strings.Contains(out, "external "+url) || !strings.Contains(out, "(external)") {
		t.Errorf("doctor on external servers: exit %d, output %q", code, out)
	}
	out, code = c.run(external, "search", "--json", "car")
	var extReply searchReply
	decodeStrict(t, out, &extReply)
	if code != 0 || len(extReply.Results) == 0 {
		t.Errorf("search on external servers: exit %d, %+v", code, extReply)
	}
}
