# vigil's build, run and test entry points. The README's two commands run deploy/setup.sh first,
# which installs everything these targets need.
SHELL := /bin/bash
export PATH := $(CURDIR)/.deps/go/bin:/usr/local/go/bin:$(PATH)
# Models and demo clips live beside the checkout, never in it.
export VIGIL_SHARED_DIR ?= $(abspath $(CURDIR)/../shared)

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO_TEST_FLAGS ?= -race -count=1 -timeout 60m

.PHONY: build run test lint bench-cameras bench-pipeline bench-captions eval bench-search clean

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/vigil ./cmd/vigil

# The main job on the embedded defaults: private PostgreSQL, embedded NATS, the demo clips indexed
# (files already indexed are skipped), the API and search page served until Ctrl-C.
run: build
	bin/vigil serve $(if $(wildcard $(VIGIL_SHARED_DIR)/media),--index $(VIGIL_SHARED_DIR)/media)

test: lint
	go test $(GO_TEST_FLAGS) ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	go vet ./...

# N simulated cameras through RTSP ingest and the motion gate: prints how many keep up, CPU per
# camera and the decode cost against ffmpeg, all from one run.
bench-cameras:
	go test -run '^$$' -bench Cameras -benchtime 1x -timeout 30m ./ingest/rtsp/

# The detector's overhead around ONNX Runtime, what the motion gate keeps from it at what cost,
# capture-to-published latency on a live stream, and cameras sustained with the detector in, each
# from one run.
bench-pipeline:
	go test -run '^$$' -bench DetectOverhead -benchtime 1x ./pipeline/detect/
	go test -run '^$$' -bench MotionGate -benchtime 1x ./pipeline/motion/
	go test -run '^$$' -bench LiveLatency -benchtime 1x ./pipeline/
	go test -run '^$$' -bench CamerasWithDetector -benchtime 1x -timeout 30m ./pipeline/

# Caption latency (greedy and 3 beams) and the share of a live camera's moments captioned at 0.5
# to 4 times a worker's pace, with the generated tiny Florence-2 and, when installed, the real one.
bench-captions:
	go test -run '^$$' -bench 'Caption$$' -benchtime 10x -v ./pipeline/caption/ | grep -v INFO
	go test -run '^$$' -bench CaptionLoad -benchtime 1x -v ./pipeline/ | grep -v INFO

# Search quality on the demo clips against the hand-made labels in sink/search/eval: recall@5, MRR
# and the share of queries answered at rank 1, per query and overall, and why each miss likely
# missed, from one run that indexes the clips afresh.
eval:
	VIGIL_EVAL=1 go test -run TestEval -count=1 -timeout 30m -v ./sink/search/eval/

# One million synthetic moments loaded in time order and indexed as a backfill would, then
# p50/p95/p99 of full-text, vector, hybrid and filtered hybrid search and recall@10 of HNSW
# against exact, all from one run: about 11 minutes on 2 cores, 6 of them building the HNSW index
# and 3 scanning exactly for recall. VIGIL_BENCH_SEARCH_DB=<url> keeps the moments in a database
# of yours between runs; VIGIL_BENCH_SEARCH_ROWS=50000 on the go test line tries it out.
bench-search:
	VIGIL_BENCH_SEARCH_ROWS=1000000 go test -run '^$$' -bench Search1M -benchtime 1x -timeout 120m -v ./sink/search/

clean:
	rm -rf bin
