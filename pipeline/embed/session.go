package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vigilcam/vigil/pipeline/onnx"
)

// Tensor names of the Hugging Face / transformers.js feature-extraction export.
const (
	inputIDs      = "input_ids"
	attentionMask = "attention_mask"
	tokenTypeIDs  = "token_type_ids"
	hiddenState   = "last_hidden_state"
)

// batch holds the model inputs of texts padded to one length, row-major [n, seq].
type batch struct {
	n, seq           int
	ids, mask, types []int64
}

func newBatch(n, seq int) *batch {
	return &batch{n: n, seq: seq, ids: make([]int64, n*seq), mask: make([]int64, n*seq), types: make([]int64, n*seq)}
}

// set puts one encoded text in row i; the rest of the row stays padding ([PAD] is id 0, mask 0,
// type 0). Every token of a single sentence has type 0, so types stay zero.
func (b *batch) set(i int, ids []int64) {
	copy(b.ids[i*b.seq:], ids)
	for t := range ids {
		b.mask[i*b.seq+t] = 1
	}
}

// open checks the model's inputs and output and creates the session. The hidden size comes from
// the declared output shape or, where that is dynamic, from one run on an empty text.
func (e *Embedder) open(log *slog.Logger) (err error) {
	defer onnx.Recover("open model", &err)
	ins, outs, err := ort.GetInputOutputInfo(e.cfg.Model)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, in := range ins {
		switch in.Name {
		case inputIDs, attentionMask, tokenTypeIDs:
		default:
			return fmt.Errorf("unexpected input %s (want %s, %s and optionally %s)", in.String(), inputIDs, attentionMask, tokenTypeIDs)
		}
		if in.DataType != ort.TensorElementDataTypeInt64 || len(in.Dimensions) != 2 {
			return fmt.Errorf("input %s is not int64 [batch, seq]", in.String())
		}
		seen[in.Name] = true
	}
	if !seen[inputIDs] || !seen[attentionMask] {
		return fmt.Errorf("inputs %v lack %s or %s", ins, inputIDs, attentionMask)
	}
	e.types = seen[tokenTypeIDs]
	declared, found := int64(0), false
	for _, out := range outs {
		if out.Name != hiddenState {
			continue
		}
		if out.DataType != ort.TensorElementDataTypeFloat || len(out.Dimensions) != 3 {
			return fmt.Errorf("output %s is not float32 [batch, seq, hidden]", out.String())
		}
		declared, found = out.Dimensions[2], true
	}
	if !found {
		return fmt.Errorf("outputs %v lack %s", outs, hiddenState)
	}
	opts, err := onnx.SessionOptions(e.cfg.Threads, e.cfg.Provider, log)
	if err != nil {
		return err
	}
	defer opts.Destroy()
	names := []string{inputIDs, attentionMask}
	if e.types {
		names = append(names, tokenTypeIDs)
	}
	if e.sess, err = ort.NewDynamicAdvancedSession(e.cfg.Model, names, []string{hiddenState}, opts); err != nil {
		return err
	}
	if declared > 0 {
		e.dim = int(declared)
		return nil
	}
	probe := newBatch(1, 2)
	probe.set(0, []int64{e.tok.cls, e.tok.sep})
	_, e.dim, err = e.forward(context.Background(), probe)
	return err
}

// forward runs the model on in and returns last_hidden_state, row-major [n, seq, dim]. Cancelling
// ctx terminates the run.
func (e *Embedder) forward(ctx context.Context, in *batch) (hidden []float32, dim int, err error) {
	defer onnx.Recover("run", &err)
	shape := ort.NewShape(int64(in.n), int64(in.seq))
	inputs := make([]ort.Value, 0, 3)
	defer func() {
		for _, v := range inputs {
			err = errors.Join(err, v.Destroy())
		}
	}()
	data := [][]int64{in.ids, in.mask}
	if e.types {
		data = append(data, in.types)
	}
	for _, d := range data {
		t, err := ort.NewTensor(shape, d)
		if err != nil {
			return nil, 0, err
		}
		inputs = append(inputs, t)
	}
	outputs := []ort.Value{nil}
	runErr := onnx.Run(ctx, e.sess, inputs, outputs)
	if outputs[0] != nil {
		defer func() { err = errors.Join(err, outputs[0].Destroy()) }()
	}
	if runErr != nil {
		return nil, 0, runErr
	}
	out, ok := outputs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, 0, fmt.Errorf("%s is a %T, not a float32 tensor", hiddenState, outputs[0])
	}
	s := out.GetShape()
	if len(s) != 3 || s[0] != int64(in.n) || s[1] != int64(in.seq) || s[2] <= 0 {
		return nil, 0, fmt.Errorf("%s has shape %v for input [%d, %d]", hiddenState, s, in.n, in.seq)
	}
	// The tensor's data is a Go copy of ORT's buffer, so it outlives Destroy.
	return out.GetData(), int(s[2]), nil
}
