// Package rtsptest gives tests real RTSP peers that nobody here wrote.
package rtsptest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilcam/vigil/configs/sharedtest"
)

// FreePort returns a TCP port on the loopback that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// VLC serves a shared clip in a loop with VLC's RTSP server (Debian's vlc-bin, which
// deploy/setup.sh installs) and returns its URL. VLC refuses to run as root, so under root it runs
// as nobody, on a copy of the clip that nobody can read.
func VLC(t testing.TB, clip string) string {
	t.Helper()
	bin, err := exec.LookPath("cvlc")
	if err != nil {
		t.Skip("cvlc is not on PATH (Debian packages vlc-bin and vlc-plugin-base; deploy/setup.sh installs them)")
	}
	src := sharedtest.Clip(t, clip)
	dir, err := os.MkdirTemp("", "vigil-vlc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, clip)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	url := fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)
	args := []string{"-I", "dummy", "-A", "dummy", "--no-video-title-show", file,
		"--rtsp-host=127.0.0.1", fmt.Sprintf("--rtsp-port=%d", port),
		"--sout", "#rtp{sdp=" + url + "}", "--sout-keep", "--loop"}
	cmd := exec.Command(bin, args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "nobody", "--", "env", "HOME=" + dir, bin}, args...)...)
	}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// runuser forks VLC: kill the whole group, or VLC outlives the test holding its output pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("VLC did not open its RTSP port:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
