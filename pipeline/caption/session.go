package caption

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vigilcam/vigil/pipeline/onnx"
)

// The four parts of the onnx-community export, in the order a caption runs them.
const (
	partVision  = "vision_encoder"
	partEmbed   = "embed_tokens"
	partEncoder = "encoder_model"
	partDecoder = "decoder_model_merged"
)

var parts = []string{partVision, partEmbed, partEncoder, partDecoder}

// suffixes maps a precision to the file-name suffix the onnx-community exports give it.
var suffixes = map[string]string{
	"fp32": "", "fp16": "_fp16", "quantized": "_quantized", "int8": "_int8", "uint8": "_uint8",
	"q4": "_q4", "q4f16": "_q4f16", "bnb4": "_bnb4",
}

// autoOrder is the precision preference when none is configured, and the fallback for a part
// missing in the configured one (the q4 export has no embed_tokens_q4). Dynamic int8 and 4-bit
// weights run fastest on CPUs for little loss; float16 comes last because CPUs compute it in
// float32 after converting.
var autoOrder = []string{"quantized", "q4", "fp32", "int8", "uint8", "bnb4", "q4f16", "fp16"}

// modelFiles picks each part's file in dir for precision ("" for the first available).
func modelFiles(dir, precision string, log *slog.Logger) (map[string]string, error) {
	order := autoOrder
	if precision != "" {
		if _, ok := suffixes[precision]; !ok {
			return nil, fmt.Errorf("unknown precision %q (want one of fp32, fp16, quantized, int8, uint8, q4, q4f16, bnb4)", precision)
		}
		order = append([]string{precision}, autoOrder...)
	}
	files := map[string]string{}
	for _, part := range parts {
		for _, p := range order {
			path := filepath.Join(dir, part+suffixes[p]+".onnx")
			if _, err := os.Stat(path); err == nil {
				files[part] = path
				if precision != "" && p != precision {
					log.Info("florence-2 part missing in the configured precision; using another", "part", part, "want", precision, "using", p)
				}
				break
			}
		}
		if files[part] == "" {
			return nil, fmt.Errorf("%s: no %s*.onnx (run `vigil models fetch florence`)", dir, part)
		}
	}
	return files, nil
}

// session is one part's ONNX Runtime session with its declared inputs and outputs.
type session struct {
	path string
	sess *ort.DynamicAdvancedSession
	in   map[string]ort.InputOutputInfo
	out  map[string]ort.InputOutputInfo
	// inNames and outNames are the session's argument order.
	inNames, outNames []string
}

func openSession(path string, opts *ort.SessionOptions) (s *session, err error) {
	defer onnx.Recover("open "+path, &err)
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s = &session{path: path, in: map[string]ort.InputOutputInfo{}, out: map[string]ort.InputOutputInfo{}}
	for _, i := range ins {
		s.in[i.Name] = i
		s.inNames = append(s.inNames, i.Name)
	}
	for _, o := range outs {
		s.out[o.Name] = o
		s.outNames = append(s.outNames, o.Name)
	}
	if s.sess, err = ort.NewDynamicAdvancedSession(path, s.inNames, s.outNames, opts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// need checks that the part declares the named inputs and outputs with the given ranks.
func (s *session) need(inputs, outputs map[string]int) error {
	var missing []string
	check := func(kind string, declared map[string]ort.InputOutputInfo, want map[string]int) {
		for name, rank := range want {
			d, ok := declared[name]
			if !ok {
				missing = append(missing, fmt.Sprintf("%s %s", kind, name))
			} else if len(d.Dimensions) != rank {
				missing = append(missing, fmt.Sprintf("%s %s of rank %d (it has %s)", kind, name, rank, d.Dimensions))
			}
		}
	}
	check("input", s.in, inputs)
	check("output", s.out, outputs)
	if len(missing) > 0 {
		return fmt.Errorf("%s is not a Florence-2 %s export: it lacks %s", s.path,
			strings.TrimSuffix(filepath.Base(s.path), ".onnx"), strings.Join(missing, ", "))
	}
	return nil
}

// dim returns a declared dimension of an input or output, or fallback where it is dynamic.
func dim(info ort.InputOutputInfo, axis int, fallback int64) int64 {
	if d := info.Dimensions[axis]; d > 0 {
		return d
	}
	return fallback
}

func (s *session) destroy() error {
	if s == nil || s.sess == nil {
		return nil
	}
	return s.sess.Destroy()
}
