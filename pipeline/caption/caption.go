// Package caption describes a frame in words with Florence-2, run through ONNX Runtime from the
// onnx-community export: the vision encoder turns the frame into image features, embed_tokens
// embeds the task prompt, the encoder reads both, and the merged decoder generates the caption
// token by token, greedily or by beam search, feeding its key/value cache back each step.
package caption

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vigilcam/vigil/pipeline/caption/bpe"
	"github.com/vigilcam/vigil/pipeline/caption/preprocess"
	"github.com/vigilcam/vigil/pipeline/onnx"
)

// ErrClosed is returned by Caption after Close.
var ErrClosed = errors.New("captioner closed")

// Config configures a Captioner.
type Config struct {
	// Dir is the model folder, holding tokenizer.json, generation_config.json and
	// preprocessor_config.json.
	Dir string
	// ONNXDir holds the four ONNX parts. It defaults to Dir/onnx.
	ONNXDir string
	// Precision picks the parts' files by their suffix: fp32, fp16, quantized, int8, uint8, q4,
	// q4f16 or bnb4. A part missing in it falls back to another precision. It defaults to the
	// first available of quantized, q4, fp32, int8, uint8, bnb4, q4f16 and fp16.
	Precision string
	// Task is the Florence-2 task whose prompt is given: <CAPTION>, <DETAILED_CAPTION> or
	// <MORE_DETAILED_CAPTION>. It defaults to <CAPTION>.
	Task string
	// Beams is the beam width; 1 decodes greedily. It defaults to generation_config.json's
	// num_beams.
	Beams int
	// MaxNewTokens is the longest caption in tokens. It defaults to 64.
	MaxNewTokens int
	// Threads is each session's intra-op thread count. It defaults to 1.
	Threads int
	// Provider is the execution provider: cpu, cuda or tensorrt. It defaults to "cpu".
	Provider string
}

// builtinPrompts are the caption prompts of Florence2Processor, for a preprocessor_config.json
// that does not list them (the microsoft/ repositories' does not).
var builtinPrompts = map[string]string{
	"<CAPTION>":               "What does the image describe?",
	"<DETAILED_CAPTION>":      "Describe in detail what is shown in the image.",
	"<MORE_DETAILED_CAPTION>": "Describe with a paragraph what is shown in the image.",
}

// Captioner captions frames with one set of sessions; Caption calls take turns.
type Captioner struct {
	cfg   Config
	files map[string]string
	tok   *bpe.Tokenizer
	gen   generation

	vision, embed, encoder, decoder *session
	hidden, imageTokens, vocab      int64
	promptLen                       int64
	// decoderIDs is set when the decoder takes input_ids rather than inputs_embeds.
	decoderIDs bool
	// pasts lists the decoder's past_key_values inputs; cross marks the cross-attention ones.
	pasts []string
	cross map[string]bool

	mu     sync.Mutex
	closed bool
	proc   *preprocess.Processor
	// Buffers reused from caption to caption; their shapes never change.
	pixels, features, encIn, encOut *tensor
	encMask                         *ort.Tensor[int64]
	prompt                          []float32 // the prompt's embeddings, [promptLen, hidden]
	dec                             *decoderBuffers
}

// New loads the model in cfg.Dir. ONNX Runtime must be initialised (onnx.Init).
func New(cfg Config, log *slog.Logger) (_ *Captioner, err error) {
	if cfg.ONNXDir == "" {
		cfg.ONNXDir = filepath.Join(cfg.Dir, "onnx")
	}
	if cfg.Task == "" {
		cfg.Task = "<CAPTION>"
	}
	if cfg.MaxNewTokens <= 0 {
		cfg.MaxNewTokens = 64
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	if cfg.Provider == "" {
		cfg.Provider = "cpu"
	}
	c := &Captioner{cfg: cfg}
	if c.files, err = modelFiles(cfg.ONNXDir, cfg.Precision, log); err != nil {
		return nil, err
	}
	if c.tok, err = bpe.Load(filepath.Join(cfg.Dir, "tokenizer.json")); err != nil {
		return nil, err
	}
	if c.gen, err = loadGeneration(filepath.Join(cfg.Dir, "generation_config.json"), cfg); err != nil {
		return nil, err
	}
	pre, err := preprocess.Load(filepath.Join(cfg.Dir, "preprocessor_config.json"))
	if err != nil {
		return nil, err
	}
	c.proc = preprocess.New(pre)
	tasks, err := loadTasks(filepath.Join(cfg.Dir, "preprocessor_config.json"))
	if err != nil {
		return nil, err
	}
	text, ok := tasks.Prompts[cfg.Task]
	if !ok {
		return nil, fmt.Errorf("unknown caption task %q (want <CAPTION>, <DETAILED_CAPTION> or <MORE_DETAILED_CAPTION>)", cfg.Task)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if err := c.open(log); err != nil {
		return nil, err
	}
	if c.imageTokens <= 0 {
		c.imageTokens = tasks.ImageTokens
	}
	if err := c.allocate(pre, c.tok.Encode(text)); err != nil {
		return nil, err
	}
	log.Info("florence-2 loaded", "files", c.files, "task", cfg.Task, "beams", c.gen.Beams)
	return c, nil
}

// loadGeneration reads generation_config.json, with cfg's overrides.
func loadGeneration(path string, cfg Config) (generation, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return generation{}, err
	}
	f := struct {
		NumBeams      *int     `json:"num_beams"`
		NoRepeat      int      `json:"no_repeat_ngram_size"`
		EarlyStopping any      `json:"early_stopping"`
		Start         *int64   `json:"decoder_start_token_id"`
		EOS           *int64   `json:"eos_token_id"`
		ForcedBOS     *int64   `json:"forced_bos_token_id"`
		ForcedEOS     *int64   `json:"forced_eos_token_id"`
		LengthPenalty *float64 `json:"length_penalty"`
	}{}
	if err := json.Unmarshal(raw, &f); err != nil {
		return generation{}, fmt.Errorf("%s: %w", path, err)
	}
	if f.Start == nil || f.EOS == nil {
		return generation{}, fmt.Errorf("%s lacks decoder_start_token_id or eos_token_id", path)
	}
	g := generation{Beams: 1, MaxNew: cfg.MaxNewTokens, NoRepeat: f.NoRepeat, Start: *f.Start, EOS: *f.EOS,
		ForcedBOS: -1, ForcedEOS: -1, LengthPenalty: 1}
	if f.NumBeams != nil {
		g.Beams = *f.NumBeams
	}
	if cfg.Beams > 0 {
		g.Beams = cfg.Beams
	}
	// "never" (stop only at the length limit) behaves as false for a width of beams this small.
	g.EarlyStopping = f.EarlyStopping == true
	if f.ForcedBOS != nil {
		g.ForcedBOS = *f.ForcedBOS
	}
	if f.ForcedEOS != nil {
		g.ForcedEOS = *f.ForcedEOS
	}
	if f.LengthPenalty != nil {
		g.LengthPenalty = *f.LengthPenalty
	}
	return g, nil
}

// tasks is what preprocessor_config.json says about prompts and image tokens.
type tasks struct {
	Prompts     map[string]string `json:"task_prompts_without_inputs"`
	ImageTokens int64             `json:"image_seq_length"`
}

func loadTasks(path string) (tasks, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return tasks{}, err
	}
	var t tasks
	if err := json.Unmarshal(raw, &t); err != nil {
		return tasks{}, fmt.Errorf("%s: %w", path, err)
	}
	if t.Prompts == nil {
		t.Prompts = builtinPrompts
	}
	if t.ImageTokens <= 0 {
		t.ImageTokens = 577 // DaViT's 24×24 patches of a 768×768 frame, plus one
	}
	return t, nil
}

// open creates the four sessions and checks that they are the export vigil expects.
func (c *Captioner) open(log *slog.Logger) error {
	opts, err := onnx.SessionOptions(c.cfg.Threads, c.cfg.Provider, log)
	if err != nil {
		return err
	}
	defer opts.Destroy()
	for _, p := range []struct {
		s    **session
		part string
	}{{&c.vision, partVision}, {&c.embed, partEmbed}, {&c.encoder, partEncoder}, {&c.decoder, partDecoder}} {
		if *p.s, err = openSession(c.files[p.part], opts); err != nil {
			return err
		}
	}
	if err := c.vision.need(map[string]int{"pixel_values": 4}, map[string]int{"image_features": 3}); err != nil {
		return err
	}
	if err := c.embed.need(map[string]int{"input_ids": 2}, map[string]int{"inputs_embeds": 3}); err != nil {
		return err
	}
	if err := c.encoder.need(map[string]int{"inputs_embeds": 3, "attention_mask": 2}, map[string]int{"last_hidden_state": 3}); err != nil {
		return err
	}
	_, c.decoderIDs = c.decoder.in["input_ids"]
	token := map[bool]string{false: "inputs_embeds", true: "input_ids"}[c.decoderIDs]
	if err := c.decoder.need(map[string]int{"encoder_attention_mask": 2, "encoder_hidden_states": 3, token: map[bool]int{false: 3, true: 2}[c.decoderIDs], "use_cache_branch": 1},
		map[string]int{"logits": 3}); err != nil {
		return err
	}
	c.cross = map[string]bool{}
	for _, name := range c.decoder.inNames {
		if !strings.HasPrefix(name, "past_key_values.") {
			continue
		}
		present := "present." + strings.TrimPrefix(name, "past_key_values.")
		if err := c.decoder.need(map[string]int{name: 4}, map[string]int{present: 4}); err != nil {
			return err
		}
		c.pasts = append(c.pasts, name)
		c.cross[name] = strings.Contains(name, ".encoder.")
	}
	if len(c.pasts) == 0 {
		return fmt.Errorf("%s has no past_key_values inputs: vigil needs the merged decoder with its cache", c.decoder.path)
	}
	c.hidden = dim(c.vision.out["image_features"], 2, dim(c.embed.out["inputs_embeds"], 2, dim(c.encoder.out["last_hidden_state"], 2, 0)))
	if c.hidden <= 0 {
		return fmt.Errorf("%s: the hidden size is dynamic in every part", c.cfg.ONNXDir)
	}
	c.imageTokens = dim(c.vision.out["image_features"], 1, 0)
	c.vocab = dim(c.decoder.out["logits"], 2, int64(c.tok.VocabSize()))
	for _, name := range c.pasts {
		if d := c.decoder.in[name].Dimensions; d[1] <= 0 || d[3] <= 0 {
			return fmt.Errorf("%s: %s has dynamic heads or head size %v", c.decoder.path, name, d)
		}
	}
	return nil
}

// allocate makes the buffers whose shapes are fixed by the model and prompt, and embeds the
// prompt once: it is the same for every frame.
func (c *Captioner) allocate(pre preprocess.Config, prompt []int64) (err error) {
	c.promptLen = int64(len(prompt))
	enc := c.imageTokens + c.promptLen
	alloc := func(s *session, name string, in bool, shape ...int64) *tensor {
		if err != nil {
			return nil
		}
		info := s.out[name]
		if in {
			info = s.in[name]
		}
		var t *tensor
		t, err = newTensor(info.DataType, ort.NewShape(shape...))
		if err != nil {
			err = fmt.Errorf("%s %s: %w", s.path, name, err)
		}
		return t
	}
	c.pixels = alloc(c.vision, "pixel_values", true, 1, 3, int64(pre.Height), int64(pre.Width))
	c.features = alloc(c.vision, "image_features", false, 1, c.imageTokens, c.hidden)
	c.encIn = alloc(c.encoder, "inputs_embeds", true, 1, enc, c.hidden)
	c.encOut = alloc(c.encoder, "last_hidden_state", false, 1, enc, c.hidden)
	promptOut := alloc(c.embed, "inputs_embeds", false, 1, c.promptLen, c.hidden)
	if err != nil {
		return err
	}
	defer promptOut.destroy()
	if c.encMask, err = ort.NewTensor(ort.NewShape(1, enc), ones(int(enc))); err != nil {
		return err
	}
	ids, err := ort.NewTensor(ort.NewShape(1, c.promptLen), prompt)
	if err != nil {
		return err
	}
	defer ids.Destroy()
	if err := onnx.Run(context.Background(), c.embed.sess, []ort.Value{ids}, []ort.Value{promptOut.v}); err != nil {
		return fmt.Errorf("embed the prompt: %w", err)
	}
	c.prompt = promptOut.get(nil, 0, int(c.promptLen*c.hidden))
	c.dec, err = c.newDecoderBuffers(c.gen.Beams, enc)
	return err
}

func ones(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// Files returns the ONNX file used for each part.
func (c *Captioner) Files() map[string]string { return c.files }

// Name names the model for moments: the folder and the decoder's file, whose suffix says the
// precision.
func (c *Captioner) Name() string {
	return filepath.Base(c.cfg.Dir) + "/" + filepath.Base(c.files[partDecoder])
}

// Caption describes a frame of packed BGR pixels in one sentence.
func (c *Captioner) Caption(ctx context.Context, width, height int, bgr []byte) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", ErrClosed
	}
	pix, err := c.proc.Pixels(width, height, bgr)
	if err != nil {
		return "", err
	}
	c.pixels.set(0, pix)
	if err := onnx.Run(ctx, c.vision.sess, []ort.Value{c.pixels.v}, []ort.Value{c.features.v}); err != nil {
		return "", fmt.Errorf("vision encoder: %w", err)
	}
	// The encoder reads the image features, then the prompt, as Florence-2 merges them.
	n := int(c.imageTokens * c.hidden)
	c.encIn.set(0, c.features.get(nil, 0, n))
	c.encIn.set(n, c.prompt)
	in := args(c.encoder.inNames, map[string]ort.Value{"inputs_embeds": c.encIn.v, "attention_mask": c.encMask})
	out := args(c.encoder.outNames, map[string]ort.Value{"last_hidden_state": c.encOut.v})
	if err := onnx.Run(ctx, c.encoder.sess, in, out); err != nil {
		return "", fmt.Errorf("encoder: %w", err)
	}
	c.dec.start(c.encOut)
	defer c.dec.reset()
	seq, err := c.gen.search(ctx, c.dec.step)
	if err != nil {
		return "", fmt.Errorf("decoder: %w", err)
	}
	return strings.TrimSpace(c.tok.Decode(seq, true)), nil
}

// args lays named values out in the order of names, the session's inputs or outputs.
func args(names []string, values map[string]ort.Value) []ort.Value {
	out := make([]ort.Value, len(names))
	for i, n := range names {
		out[i] = values[n]
	}
	return out
}

// Close frees the sessions and buffers; Caption then fails with ErrClosed.
func (c *Captioner) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for _, t := range []*tensor{c.pixels, c.features, c.encIn, c.encOut} {
		errs = append(errs, t.destroy())
	}
	if c.encMask != nil {
		errs = append(errs, c.encMask.Destroy())
	}
	if c.dec != nil {
		errs = append(errs, c.dec.destroy())
	}
	for _, s := range []*session{c.vision, c.embed, c.encoder, c.decoder} {
		errs = append(errs, s.destroy())
	}
	return errors.Join(errs...)
}
