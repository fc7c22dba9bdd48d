#!/usr/bin/env python3
"""Writes the dequantisation fixtures of Tests/Fixtures/formats/gguf_quants: for every ggml type libglm reads,
random blocks plus edge blocks (`<TYPE>.blocks`, raw ggml bytes) and what gguf-py's reference dequantiser makes of
them (`<TYPE>.f32`, little-endian float32 bits). The Swift test GGUFDequantTests compares glm_dequantize with them
bit for bit.

gguf-py is llama.cpp's Python package (`pip install gguf`, or the `gguf-py` folder of llama.cpp / of the
llama-cpp-python sdist, given with --gguf-py). It is a development tool here, not a dependency of the build.

    python tools/make_gguf_quant_fixtures.py --gguf-py /tmp/llama-sdist/.../vendor/llama.cpp/gguf-py
"""
import argparse
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "formats", "gguf_quants")

# type name -> (byte offsets of the f16 scale fields inside one block)
SCALES = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "IQ4_NL": [0], "IQ4_XS": [0],
}
# f16 bit patterns that make the edge blocks: zero, -0, the largest finite, the smallest subnormal, the largest
# subnormal, ±Inf, a quiet NaN, a signalling NaN, a negative NaN.
EDGE_SCALES = [0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x0001, 0x03FF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf-py", help="folder holding the gguf package (llama.cpp's gguf-py)")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    if args.gguf_py:
        sys.path.insert(0, args.gguf_py)
    import gguf
    from gguf import quants

    rng = np.random.default_rng(20261206)
    os.makedirs(args.out, exist_ok=True)
    for name, offsets in SCALES.items():
        qtype = gguf.GGMLQuantizationType[name]
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        randoms = 48 if block == 32 else 12
        blocks = [rng.integers(0, 256, size, dtype=np.uint8) for _ in range(randoms)]
        # Random blocks with ordinary scales (|scale| about 1e-3..1, as real weights have).
        for b in blocks:
            for off in offsets:
                b[off:off + 2] = np.frombuffer(np.float16(rng.normal(0, 0.05)).tobytes(), np.uint8)
        blocks.append(np.zeros(size, np.uint8))             # all zero
        blocks.append(np.full(size, 0xFF, np.uint8))        # every bit set (NaN scales, extreme quants)
        for i, bits in enumerate(EDGE_SCALES):              # each edge scale in every scale field, random quants
            b = rng.integers(0, 256, size, dtype=np.uint8)
            for off in offsets:
                b[off:off + 2] = np.frombuffer(np.uint16(bits).tobytes(), np.uint8)
            blocks.append(b)
            if len(offsets) == 2:                           # the min field alone at the edge, the scale ordinary
                b = b.copy()
                b[offsets[0]:offsets[0] + 2] = np.frombuffer(np.float16(0.01 * (i + 1)).tobytes(), np.uint8)
                blocks.append(b)
        raw = np.stack(blocks)
        with np.errstate(all="ignore"):
            values = quants.dequantize(raw, qtype).astype(np.float32)
        assert values.shape == (len(blocks), block)
        raw.tofile(os.path.join(args.out, f"{name}.blocks"))
        values.astype("<f4").tofile(os.path.join(args.out, f"{name}.f32"))
        print(name, len(blocks), "blocks")

    # Activation rows quantised by ggml's reference Q8_0 quantiser (what glm_quantize_row_q8_0 must reproduce):
    # random rows at several magnitudes, a zero block, values on rounding boundaries, f16-subnormal scales.
    q8 = gguf.GGMLQuantizationType.Q8_0
    rows = [rng.normal(0, s, 32).astype(np.float32) for s in (1e-6, 1e-3, 0.1, 1.0, 30.0, 1e4) for _ in range(4)]
    rows.append(np.zeros(32, np.float32))
    rows.append((np.arange(32, dtype=np.float32) - 15.5) * np.float32(127 / 15.5 / 127))  # many exact .5 ties
    rows.append(np.linspace(-127, 127, 32, dtype=np.float32))
    acts = np.concatenate(rows)
    acts.astype("<f4").tofile(os.path.join(args.out, "activations.f32"))
    quants.quantize(acts.reshape(-1, 32), q8).tofile(os.path.join(args.out, "activations.q8_0"))
    print("activations", len(rows), "blocks")

    # The plain float types, with every special value.
    specials32 = np.array([0.0, -0.0, 1.0, -2.5, 3.4028235e38, -3.4028235e38, 1e-45, 1.17549435e-38,
                           np.inf, -np.inf, np.nan], np.float32)
    f32 = np.concatenate([specials32, rng.normal(0, 1, 117).astype(np.float32)])
    f16_bits = np.concatenate([np.array(EDGE_SCALES, np.uint16), rng.integers(0, 1 << 16, 117, dtype=np.uint16)])
    bf16_bits = np.concatenate([np.array([0, 0x8000, 0x7F7F, 0xFF7F, 0x0001, 0x007F, 0x7F80, 0xFF80, 0x7FC0, 0x7F81,
                                          0xFFC0], np.uint16), rng.integers(0, 1 << 16, 117, dtype=np.uint16)])
    for name, raw in (("F32", f32.view(np.uint8)), ("F16", f16_bits.view(np.uint8)), ("BF16", bf16_bits.view(np.uint8))):
        qtype = gguf.GGMLQuantizationType[name]
        with np.errstate(all="ignore"):
            if name == "F32":
                values = raw.view(np.float32)
            elif name == "F16":
                values = raw.view(np.float16).astype(np.float32)
            else:
                values = quants.dequantize(raw, qtype).astype(np.float32)
        raw.tofile(os.path.join(args.out, f"{name}.blocks"))
        values.astype("<f4").tofile(os.path.join(args.out, f"{name}.f32"))
        print(name, len(values), "values")


if __name__ == "__main__":
    main()
