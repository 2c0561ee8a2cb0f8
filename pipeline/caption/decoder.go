package caption

import (
	"context"
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/vigilcam/vigil/pipeline/onnx"
)

// decoderBuffers holds a caption's decoding state for a batch of beams: what the merged
// decoder's cache branch needs, reused from caption to caption where the shapes allow.
type decoderBuffers struct {
	c     *Captioner
	beams int

	hidden  *tensor            // encoder_hidden_states, the encoder output once per beam
	mask    *ort.Tensor[int64] // encoder_attention_mask
	ids     *ort.Tensor[int64] // the newest token of each beam
	embeds  *tensor            // embed_tokens' output for ids
	input   *tensor            // the decoder's inputs_embeds (embeds in the decoder's type)
	useRaw  []bool
	use     *ort.Tensor[bool] // use_cache_branch
	logits  *tensor
	scratch []float32
	rows    [][]float32 // the logits of each beam, handed to the search

	// empty are the zero-length pasts of the first step.
	empty map[string]*tensor
	// cross holds the cross-attention cache the first step computes; later steps read it back
	// instead of the cache branch's outputs, which optimum's merged export fills with
	// placeholders of shape [0, heads, 1, head size].
	cross       map[string]*tensor
	placeholder map[string]*tensor
	// self is the self-attention cache of the sequence so far (nil before the first step).
	self map[string]*tensor
}

func (c *Captioner) newDecoderBuffers(beams int, enc int64) (d *decoderBuffers, err error) {
	d = &decoderBuffers{c: c, beams: beams, empty: map[string]*tensor{}, cross: map[string]*tensor{},
		placeholder: map[string]*tensor{}, useRaw: []bool{false}}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.destroy())
		}
	}()
	b := int64(beams)
	dec := c.decoder
	mk := func(info ort.InputOutputInfo, shape ...int64) (*tensor, error) {
		t, err := newTensor(info.DataType, ort.NewShape(shape...))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", dec.path, info.Name, err)
		}
		return t, nil
	}
	if d.hidden, err = mk(dec.in["encoder_hidden_states"], b, enc, c.hidden); err != nil {
		return d, err
	}
	if d.mask, err = ort.NewTensor(ort.NewShape(b, enc), ones(int(b*enc))); err != nil {
		return d, err
	}
	if d.ids, err = ort.NewTensor(ort.NewShape(b, 1), make([]int64, b)); err != nil {
		return d, err
	}
	if d.embeds, err = mk(c.embed.out["inputs_embeds"], b, 1, c.hidden); err != nil {
		return d, err
	}
	if !c.decoderIDs {
		if d.input, err = mk(dec.in["inputs_embeds"], b, 1, c.hidden); err != nil {
			return d, err
		}
	}
	if d.use, err = ort.NewTensor(ort.NewShape(1), d.useRaw); err != nil {
		return d, err
	}
	if d.logits, err = mk(dec.out["logits"], b, 1, c.vocab); err != nil {
		return d, err
	}
	for _, name := range c.pasts {
		dims := dec.in[name].Dimensions
		heads, size := dims[1], dims[3]
		if d.empty[name], err = mk(dec.in[name], b, heads, 0, size); err != nil {
			return d, err
		}
		if !c.cross[name] {
			continue
		}
		present := dec.out[presentOf(name)]
		if d.cross[name], err = mk(present, b, heads, enc, size); err != nil {
			return d, err
		}
		if d.placeholder[name], err = mk(present, placeholderShape(present.Dimensions)...); err != nil {
			return d, err
		}
	}
	return d, nil
}

func presentOf(past string) string { return "present" + past[len("past_key_values"):] }

// placeholderShape is the shape optimum gives the cache branch's constant outputs: no rows, and 1
// for every other dynamic dimension.
func placeholderShape(declared []int64) []int64 {
	s := []int64{0}
	for _, d := range declared[1:] {
		s = append(s, max(d, 1))
	}
	return s
}

// start readies a caption's decoding: the encoder output goes to every beam.
func (d *decoderBuffers) start(encOut *tensor) {
	d.reset()
	d.scratch = encOut.get(d.scratch, 0, int(encOut.shape.FlattenedSize()))
	for b := range d.beams {
		d.hidden.set(b*len(d.scratch), d.scratch)
	}
}

// reset drops the self-attention cache of the last caption.
func (d *decoderBuffers) reset() {
	for name, t := range d.self {
		if t != d.empty[name] {
			_ = t.destroy()
		}
	}
	d.self = nil
}

// step is the stepFunc of a caption: it reorders the cache for the surviving beams, embeds the
// newest tokens and runs the decoder once.
func (d *decoderBuffers) step(ctx context.Context, tokens []int64, parents []int) ([][]float32, error) {
	c := d.c
	if len(tokens) != d.beams {
		return nil, fmt.Errorf("%d tokens for %d beams", len(tokens), d.beams)
	}
	if d.self != nil && !identity(parents) {
		for name, t := range d.self {
			g, err := t.gatherRows(parents)
			if err != nil {
				return nil, err
			}
			_ = t.destroy()
			d.self[name] = g
		}
	}
	copy(d.ids.GetData(), tokens)
	values := map[string]ort.Value{
		"encoder_attention_mask": d.mask,
		"encoder_hidden_states":  d.hidden.v,
		"use_cache_branch":       d.use,
	}
	if c.decoderIDs {
		values["input_ids"] = d.ids
	} else {
		if err := onnx.Run(ctx, c.embed.sess, []ort.Value{d.ids}, []ort.Value{d.embeds.v}); err != nil {
			return nil, fmt.Errorf("embed tokens: %w", err)
		}
		d.scratch = d.embeds.get(d.scratch, 0, int(d.embeds.shape.FlattenedSize()))
		d.input.set(0, d.scratch)
		values["inputs_embeds"] = d.input.v
	}
	first := d.self == nil
	d.useRaw[0] = !first
	outputs := map[string]ort.Value{"logits": d.logits.v}
	next := map[string]*tensor{}
	defer func() {
		for _, t := range next {
			_ = t.destroy() // only left here when the run failed
		}
	}()
	for _, name := range c.pasts {
		present := presentOf(name)
		switch {
		case c.cross[name] && first:
			values[name] = d.empty[name].v
			outputs[present] = d.cross[name].v
		case c.cross[name]:
			values[name] = d.cross[name].v
			outputs[present] = d.placeholder[name].v
		default:
			past := d.empty[name]
			if !first {
				past = d.self[name]
			}
			values[name] = past.v
			shape := past.shape.Clone()
			shape[2]++
			t, err := newTensor(c.decoder.out[present].DataType, shape)
			if err != nil {
				return nil, err
			}
			next[name] = t
			outputs[present] = t.v
		}
	}
	if err := onnx.Run(ctx, c.decoder.sess, args(c.decoder.inNames, values), args(c.decoder.outNames, outputs)); err != nil {
		return nil, err
	}
	d.reset()
	d.self, next = next, nil
	if d.rows == nil {
		d.rows = make([][]float32, d.beams)
	}
	v := int(c.vocab)
	for b := range d.rows {
		d.rows[b] = d.logits.get(d.rows[b], b*v, v)
	}
	return d.rows, nil
}

func identity(parents []int) bool {
	for i, p := range parents {
		if p != i {
			return false
		}
	}
	return true
}

func (d *decoderBuffers) destroy() error {
	d.reset()
	errs := []error{d.hidden.destroy(), d.embeds.destroy(), d.input.destroy(), d.logits.destroy()}
	for _, t := range []*ort.Tensor[int64]{d.mask, d.ids} {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	if d.use != nil {
		errs = append(errs, d.use.Destroy())
	}
	for _, m := range []map[string]*tensor{d.empty, d.cross, d.placeholder} {
		for _, t := range m {
			errs = append(errs, t.destroy())
		}
	}
	return errors.Join(errs...)
}
