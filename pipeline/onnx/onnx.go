// Package onnx owns the process-wide ONNX Runtime environment: finding and loading the shared
// library once, and building session options with the configured execution provider.
package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// libraryName is the file deploy/setup.sh installs under .deps/onnxruntime.
const libraryName = "libonnxruntime.so.1"

// ErrUnsupportedProvider is returned for an execution provider name vigil does not know.
var ErrUnsupportedProvider = errors.New("unsupported execution provider")

var (
	initMu   sync.Mutex
	initPath string
)

// Library returns the ONNX Runtime library to load: configured when it is set, else
// .deps/onnxruntime/libonnxruntime.so.1 in the working directory, the executable's directory or
// one of their parents, else the bare name for the system's library search path.
func Library(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("onnxruntime library: %w", err)
		}
		return configured, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			p := filepath.Join(dir, ".deps", "onnxruntime", libraryName)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return libraryName, nil
}

// Init loads the library at path and creates the process's ONNX Runtime environment. Later calls
// with the same path do nothing; a different path is an error, because a process has one runtime.
func Init(path string) error {
	initMu.Lock()
	defer initMu.Unlock()
	if initPath != "" {
		if path != initPath {
			return fmt.Errorf("onnxruntime already loaded from %s, not loading %s", initPath, path)
		}
		return nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("load onnxruntime %s (run deploy/setup.sh, or set onnx.library): %w", path, err)
	}
	initPath = path
	return nil
}

// Version returns the loaded runtime's version, or "" before Init.
func Version() string {
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}

// SessionOptions returns options for a session with threads intra-op threads on provider (cpu,
// cuda or tensorrt). A provider the library or machine lacks falls back to CPU with a warning,
// because detection on CPU beats no detection. The caller destroys the options.
func SessionOptions(threads int, provider string, log *slog.Logger) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	if err := configure(opts, threads, provider, log); err != nil {
		return nil, errors.Join(err, opts.Destroy())
	}
	return opts, nil
}

func configure(opts *ort.SessionOptions, threads int, provider string, log *slog.Logger) error {
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return fmt.Errorf("intra-op threads: %w", err)
	}
	// Inter-op parallelism only helps graphs with parallel branches; YOLO and BERT are chains,
	// and extra threads would fight the other sessions for the same cores.
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return fmt.Errorf("inter-op threads: %w", err)
	}
	var err error
	switch provider {
	case "cpu":
		return nil
	case "cuda":
		err = appendCUDA(opts)
	case "tensorrt":
		err = appendTensorRT(opts)
	default:
		return fmt.Errorf("%w %q (want cpu, cuda or tensorrt)", ErrUnsupportedProvider, provider)
	}
	if err != nil {
		log.Warn("execution provider unavailable, falling back to cpu", "provider", provider, "err", err)
	}
	return nil
}

func appendCUDA(opts *ort.SessionOptions) error {
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer cuda.Destroy()
	return opts.AppendExecutionProviderCUDA(cuda)
}

func appendTensorRT(opts *ort.SessionOptions) error {
	trt, err := ort.NewTensorRTProviderOptions()
	if err != nil {
		return err
	}
	defer trt.Destroy()
	return opts.AppendExecutionProviderTensorRT(trt)
}

// Run runs sess, terminating the run when ctx ends; outputs left nil are allocated by the
// runtime. A panic in the bindings becomes an error: a bad model or input must cost one call,
// not the process.
func Run(ctx context.Context, sess *ort.DynamicAdvancedSession, inputs, outputs []ort.Value) (err error) {
	defer Recover("run", &err)
	opts, err := ort.NewRunOptions()
	if err != nil {
		return err
	}
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = opts.Terminate() // the run then fails, and ctx.Err says why
		close(terminated)
	})
	defer func() {
		if !stop() {
			<-terminated
		}
		err = errors.Join(err, opts.Destroy())
	}()
	if err := sess.RunWithOptions(inputs, outputs, opts); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// Recover, deferred, turns a panic in the ONNX Runtime bindings into an error saying what failed.
func Recover(what string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: onnxruntime panic: %v", what, r)
	}
}
