// Package embed turns text into all-MiniLM-L6-v2 sentence embeddings: a BERT WordPiece tokenizer
// configured by the model's tokenizer.json, an ONNX Runtime session over the transformer, mean
// pooling of last_hidden_state over the attention mask and L2 normalisation, as
// sentence-transformers computes them. It embeds moment captions and search queries.
package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Dim is the embedding size vigil stores (the moments' vector(384) column).
const Dim = 384

// maxPositions is the longest input BERT's position embeddings cover.
const maxPositions = 512

// ErrDimension is returned by New for a model whose hidden size is not Dim.
var ErrDimension = errors.New("embedding size does not match vigil's vector(384)")

// ErrClosed is returned by Embed after Close.
var ErrClosed = errors.New("embedder closed")

// Config configures an Embedder.
type Config struct {
	// Model is the path of an all-MiniLM-L6-v2 ONNX export (fp32 or quantized) with int64 inputs
	// input_ids and attention_mask (and token_type_ids when the graph has it), and the float32
	// output last_hidden_state [batch, seq, hidden].
	Model string
	// Tokenizer is the path of the model's tokenizer.json.
	Tokenizer string
	// Threads is the session's intra-op thread count. It defaults to 1.
	Threads int
	// Provider is the execution provider: cpu, cuda or tensorrt. It defaults to "cpu".
	Provider string
	// MaxLength is the most tokens per text, [CLS] and [SEP] included; longer texts are truncated.
	// It defaults to 256, sentence-transformers' max_seq_length for this model, and may not exceed
	// 512.
	MaxLength int
	// BatchSize is the most texts run through the model at once. It defaults to 32.
	BatchSize int
}

// Embedder embeds texts with one reused ONNX Runtime session; it is safe for concurrent use.
type Embedder struct {
	cfg   Config
	name  string
	tok   *Tokenizer
	dim   int
	types bool // whether the graph takes token_type_ids

	mu   sync.RWMutex // Embed holds it shared, Close exclusively
	sess *ort.DynamicAdvancedSession
}

// New loads the tokenizer and the model and checks that the model's hidden size is Dim.
// onnx.Init must have been called.
func New(cfg Config, log *slog.Logger) (*Embedder, error) {
	if cfg.Threads < 1 {
		cfg.Threads = 1
	}
	if cfg.Provider == "" {
		cfg.Provider = "cpu"
	}
	if cfg.MaxLength <= 0 {
		cfg.MaxLength = 256
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 32
	}
	if cfg.MaxLength < 2 || cfg.MaxLength > maxPositions {
		return nil, fmt.Errorf("embedder: max length %d is outside 2..%d", cfg.MaxLength, maxPositions)
	}
	tok, err := LoadTokenizer(cfg.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("embedder: %w", err)
	}
	e := &Embedder{cfg: cfg, name: filepath.Base(cfg.Model), tok: tok}
	if err := e.open(log); err != nil {
		return nil, errors.Join(fmt.Errorf("embedder %s: %w", cfg.Model, err), e.Close())
	}
	if e.dim != Dim {
		return nil, errors.Join(fmt.Errorf("embedder %s: hidden size %d: %w", cfg.Model, e.dim, ErrDimension), e.Close())
	}
	return e, nil
}

// Name is the model's file name, recorded with each moment.
func (e *Embedder) Name() string { return e.name }

// Embed returns one unit-length Dim-vector per text, in order. Texts run in batches of
// Config.BatchSize, each padded to its longest text; padding does not change an embedding.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.sess == nil {
		return nil, ErrClosed
	}
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
		batch := texts[start:min(len(texts), start+e.cfg.BatchSize)]
		vecs, err := e.embedBatch(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("embed texts %d..%d: %w", start, start+len(batch)-1, err)
		}
		out = append(out, vecs...)
	}
	return out, nil
}

// embedBatch tokenises texts, pads them to the longest, runs the model and pools.
func (e *Embedder) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	encoded := make([][]int64, len(texts))
	seq := 0
	for i, text := range texts {
		encoded[i], _, _ = e.tok.Encode(text, e.cfg.MaxLength)
		seq = max(seq, len(encoded[i]))
	}
	in := newBatch(len(texts), seq)
	for i, ids := range encoded {
		in.set(i, ids)
	}
	hidden, dim, err := e.forward(ctx, in)
	if err != nil {
		return nil, err
	}
	if dim != e.dim {
		return nil, fmt.Errorf("model returned hidden size %d, want %d", dim, e.dim)
	}
	return pool(hidden, in.mask, len(texts), seq, dim), nil
}

// Close releases the session; it is safe to call twice, and waits for running Embed calls.
func (e *Embedder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sess == nil {
		return nil
	}
	err := e.sess.Destroy()
	e.sess = nil
	return err
}

// pool returns the attention-masked mean of each sequence's hidden states, L2-normalised, with
// sentence-transformers' guards: the token count is clamped to 1e-9 and the norm to 1e-12.
func pool(hidden []float32, mask []int64, batch, seq, dim int) [][]float32 {
	out := make([][]float32, batch)
	sum := make([]float64, dim)
	for b := range batch {
		clear(sum)
		count := 0.0
		for t := range seq {
			if mask[b*seq+t] == 0 {
				continue
			}
			count++
			for j, h := range hidden[(b*seq+t)*dim : (b*seq+t+1)*dim] {
				sum[j] += float64(h)
			}
		}
		count = max(count, 1e-9)
		norm := 0.0
		for j := range sum {
			sum[j] /= count
			norm += sum[j] * sum[j]
		}
		norm = max(math.Sqrt(norm), 1e-12)
		v := make([]float32, dim)
		for j, s := range sum {
			v[j] = float32(s / norm)
		}
		out[b] = v
	}
	return out
}
