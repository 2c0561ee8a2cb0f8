#!/usr/bin/env python3
"""Writes the golden pixel_values that preprocess_test.go checks the Go processor against.

Each case is a synthetic frame (synth below; the Go test rebuilds it from the same recipe), put
through what Hugging Face's CLIPImageProcessor does with Florence-2's preprocessor_config.json:
Pillow's Image.resize of the uint8 RGB picture, then rescale (float64 product, cast to float32) and
normalise (float32), channels first. transformers itself is not needed: its resize is
PIL.Image.fromarray(...).resize((width, height), resample) and np.array of the result, and the
rescale and normalise are the numpy lines in golden().

For each case golden.json records the sizes, the filter, the SHA-256 of the whole output as
little-endian float32, and <name>.bin holds a sample of it: records of uint32 index and float32
value, little-endian.

Run it from this folder on Debian bookworm (Pillow 9.4.0, numpy 1.24), no network beyond apt:

    apt-get install -y python3-pil python3-numpy
    /usr/bin/python3 gen_golden.py
"""

import hashlib
import json

import numpy as np
import PIL
from PIL import Image

# Florence-2-base's preprocessor_config.json.
RESCALE = 0.00392156862745098
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

BILINEAR, BICUBIC = 2, 3

# name, frame width and height, output width and height, filter
CASES = [
    ("mixed_64x36_to_48x48", 64, 36, 48, 48, BICUBIC),  # narrower, taller
    ("down_100x80_to_32x32", 100, 80, 32, 32, BICUBIC),
    ("bilinear_100x40_to_48x48", 100, 40, 48, 48, BILINEAR),
    ("vertical_only_40x30_to_40x60", 40, 30, 40, 60, BICUBIC),  # Pillow skips the horizontal pass
    ("horizontal_only_30x40_to_75x40", 30, 40, 75, 40, BICUBIC),  # and here the vertical one
    ("florence_64x36", 64, 36, 768, 768, BICUBIC),
    ("florence_640x360", 640, 360, 768, 768, BICUBIC),
    ("florence_1920x1080", 1920, 1080, 768, 768, BICUBIC),
]

SAMPLES = 512


def synth(w, h):
    """Returns an h x w x 3 uint8 frame in BGR order: ramps that wrap round, hashed noise, and hard
    black and white 8-pixel blocks, so that the bicubic kernel over- and undershoots and clips."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    ramp = x * 3 + y * 2 + c * 80
    noise = (((x * 7919 + y * 104729 + c * 31) * 2654435761) >> 13) & 31
    v = (ramp + noise) & 255
    block = (x // 8 + y // 8) % 3 == 0
    v = np.where(block, np.where((x // 8) % 2 == 0, 0, 255), v)
    return v.astype(np.uint8)


def golden(bgr, width, height, resample):
    """Returns pixel_values, flattened CHW float32, as CLIPImageProcessor computes them."""
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    img = Image.fromarray(rgb, "RGB").resize((width, height), resample)
    arr = np.array(img)
    x = (arr.astype(np.float64) * RESCALE).astype(np.float32)
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)).reshape(-1)


def main():
    manifest = {
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "rescale": RESCALE,
        "mean": MEAN,
        "std": STD,
        "cases": [],
    }
    for i, (name, w, h, ow, oh, resample) in enumerate(CASES):
        out = golden(synth(w, h), ow, oh, resample)
        assert out.dtype == np.float32 and out.size == 3 * ow * oh
        rng = np.random.RandomState(i)
        idx = np.unique(np.concatenate([[0, out.size - 1], rng.randint(0, out.size, SAMPLES - 2)]))
        rec = np.empty(idx.size, dtype=[("index", "<u4"), ("value", "<f4")])
        rec["index"], rec["value"] = idx, out[idx]
        with open(name + ".bin", "wb") as f:
            f.write(rec.tobytes())
        manifest["cases"].append({
            "name": name,
            "frame_width": w,
            "frame_height": h,
            "width": ow,
            "height": oh,
            "resample": resample,
            "sha256": hashlib.sha256(out.astype("<f4").tobytes()).hexdigest(),
        })
    with open("golden.json", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
