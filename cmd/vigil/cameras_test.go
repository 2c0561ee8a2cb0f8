package main

import (
	"strings"
	"testing"
)

// TestCamerasCommand drives `vigil cameras` on the embedded database: no output shows a password.
func TestCamerasCommand(t *testing.T) {
	const secret = "s3cr3t-Pw"
	c := newCLI(t)
	run := func(wantCode int, args ...string) string {
		t.Helper()
		out, code := c.run(nil, args...)
		if code != wantCode {
			t.Errorf("vigil %s: exit %d, want %d", strings.Join(args, " "), code, wantCode)
		}
		if strings.Contains(out, secret) {
			t.Errorf("vigil %s shows the password: %s", strings.Join(args, " "), out)
		}
		return out
	}
	if out := run(0, "cameras", "add", "gate", "rtsp://admin:"+secret+"@10.0.0.5/live", "--fps", "2.5"); !strings.Contains(out, "rtsp://admin:xxxxx@10.0.0.5/live") {
		t.Errorf("add: %s", out)
	}
	run(0, "cameras", "add", "--disabled", "--keyframes-only", "door", "rtsps://10.0.0.6/live")
	run(1, "cameras", "add", "gate", "rtsp://10.0.0.7/live")
	run(2, "cameras", "add", "bad", "http://admin:"+secret+"@h/")
	run(2, "cameras", "add", "lonely")
	run(2, "cameras", "nope")
	if out := run(0, "cameras", "list"); !strings.Contains(out, "rtsp://admin:xxxxx@10.0.0.5/live") || !strings.Contains(out, "door") {
		t.Errorf("list: %s", out)
	}
	if out := run(0, "cameras", "list", "--json"); !strings.Contains(out, `"url": "rtsp://admin:xxxxx@10.0.0.5/live"`) {
		t.Errorf("list --json: %s", out)
	}
	run(0, "cameras", "rm", "gate")
	run(1, "cameras", "rm", "gate")
	if out := run(0, "cameras", "list", "--json"); strings.Contains(out, "gate") || !strings.Contains(out, "door") {
		t.Errorf("list after rm: %s", out)
	}
}
