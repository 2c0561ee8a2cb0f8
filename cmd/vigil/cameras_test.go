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
	run(0, "cameras", "add", "--disabled", "--keyframes-only", "--mask", "0.8,0 1,0 1,0.1", "door", "rtsps://10.0.0.6/live")
	run(2, "cameras", "add", "--mask", "0,0 1,1", "bad", "rtsp://10.0.0.8/live")
	run(2, "cameras", "add", "--mask", "0,0 1,x 0,1", "bad", "rtsp://10.0.0.8/live")
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
	if out := run(0, "cameras", "list", "--json"); !strings.Contains(out, `"x": 0.8`) {
		t.Errorf("list --json after add --mask: %s", out)
	}
	run(0, "cameras", "mask", "gate", "0,0 0.2,0 0.2,0.2 0,0.2", "0.5,0.5 0.6,0.5 0.6,0.6")
	run(2, "cameras", "mask", "gate", "0,0 2,0 0,1")
	run(1, "cameras", "mask", "nobody")
	if out := run(0, "cameras", "list", "--json"); strings.Count(out, `"x": 0.6`) != 2 {
		t.Errorf("list --json after mask: %s", out)
	}
	run(0, "cameras", "mask", "door")
	if out := run(0, "cameras", "list", "--json"); strings.Contains(out, `"x": 0.8`) {
		t.Errorf("mask without polygons left door's mask: %s", out)
	}
	run(0, "cameras", "rm", "gate")
	run(1, "cameras", "rm", "gate")
	if out := run(0, "cameras", "list", "--json"); strings.Contains(out, "gate") || !strings.Contains(out, "door") {
		t.Errorf("list after rm: %s", out)
	}
}
