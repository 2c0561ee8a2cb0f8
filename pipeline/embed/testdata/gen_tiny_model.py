#!/usr/bin/env python3
"""Writes the embedder's test models and tokenizer, committed beside this script.

CI does not run it; run it after changing it (Debian: apt-get install python3-onnx python3-numpy)
with /usr/bin/python3 pipeline/embed/testdata/gen_tiny_model.py.

tiny_model.onnx has the inputs and output of the all-MiniLM-L6-v2 export (input_ids,
attention_mask, token_type_ids int64 [batch, seq] -> last_hidden_state float32 [batch, seq, 384])
and computes, for every token,

    E[input_ids % K] + T[token_type_ids] + (1 - attention_mask) * P

with the small exact tables below, which embed_test.go computes again in Go. Padded positions get
a large offset P, so pooling that does not honour the mask shows at once.
tiny_model_dim8.onnx is the same graph with hidden size 8, declared dynamic, for the size check.
tokenizer.json is a BERT tokenizer.json with a vocabulary of a few words.
"""

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

K = 13  # rows of the embedding table


def tables(hidden):
    j = np.arange(hidden)
    e = np.stack([((k * 31 + j * 17) % 97 - 48) / 16 for k in range(K)])
    t = np.stack([((tt * 7 + j * 5) % 11 - 5) / 8 for tt in range(2)])
    p = 100 + j % 3
    return e.astype(np.float32), t.astype(np.float32), p.astype(np.float32)


def model(hidden, declared):
    e, t, p = tables(hidden)
    inits = [
        numpy_helper.from_array(np.array(K, dtype=np.int64), "K"),
        numpy_helper.from_array(e, "E"),
        numpy_helper.from_array(t, "T"),
        numpy_helper.from_array(p, "P"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"),
    ]
    nodes = [
        helper.make_node("Mod", ["input_ids", "K"], ["row"]),
        helper.make_node("Gather", ["E", "row"], ["word"], axis=0),
        helper.make_node("Gather", ["T", "token_type_ids"], ["type"], axis=0),
        helper.make_node("Add", ["word", "type"], ["token"]),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "mask"], ["padding"]),
        helper.make_node("Unsqueeze", ["padding", "last_axis"], ["padding3"]),
        helper.make_node("Mul", ["padding3", "P"], ["offset"]),
        helper.make_node("Add", ["token", "offset"], ["last_hidden_state"]),
    ]
    seq = ["batch_size", "sequence_length"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, seq)
              for n in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, seq + [declared])
    graph = helper.make_graph(nodes, "tiny_minilm", inputs, [output], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="vigil gen_tiny_model.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["a", "the", "man", "person", "riding", "on", "bike", "bicycle", "red", "car", "parked",
         "in", "snow", "near", "gate", "walk", "##ing", "##s", ",", ".", "!", "cafe", "night"]


def tokenizer():
    vocab = {tok: i for i, tok in enumerate(SPECIAL + WORDS)}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for s in SPECIAL],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [],
            "special_tokens": {s: {"id": s, "ids": [vocab[s]], "tokens": [s]} for s in ("[CLS]", "[SEP]")},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    onnx.save(model(384, 384), os.path.join(here, "tiny_model.onnx"))
    onnx.save(model(8, "hidden"), os.path.join(here, "tiny_model_dim8.onnx"))
    with open(os.path.join(here, "tokenizer.json"), "w") as f:
        json.dump(tokenizer(), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
