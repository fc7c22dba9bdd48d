#!/usr/bin/env python3
"""Writes the quantisation fixtures of Tests/Fixtures/formats/gguf_quantize: one f32 matrix (`input.f32`, 27 rows of
512: random rows at several magnitudes plus edge rows, three of them with NaN, ±Inf and ±1e30) and what ggml's
reference quantisers make of it for every type libglm writes (`<TYPE>.bin`, raw ggml blocks). The Swift test GGUFQuantizeTests compares glm_quantize_blocks with
them byte for byte.

The reference is ggml itself: `ggml_quantize_chunk` of libggml-base.so (llama.cpp's build, --ggml-lib) with no
importance matrix, exactly what llama-quantize calls. Where gguf-py's quants.py has a quantiser too (Q4_0, Q4_1,
Q5_0, Q5_1, Q8_0; it has none for the K-quants) its bytes are checked to be the same, so the two references agree.
Development tools only (llama.cpp built from the llama-cpp-python sdist in a scratch folder), not part of the build.

    python tools/make_gguf_quantize_fixtures.py --gguf-py .../vendor/llama.cpp/gguf-py \
        --ggml-lib .../vendor/llama.cpp/build/bin/libggml-base.so
"""
import argparse
import ctypes
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "formats", "gguf_quantize")
COLUMNS = 512
# ggml type ids (ggml.h) of the types written here; gguf-py quantises the first five.
TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
         "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "F16": 1, "BF16": 30}
GGUF_PY = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16"}


def make_input():
    rng = np.random.default_rng(20261207)
    rows = []
    for scale in (1e-3, 0.02, 0.05, 1.0, 30.0):                    # ordinary weights at several magnitudes
        rows.append(rng.normal(0, scale, COLUMNS))
    rows.append(rng.standard_t(2, COLUMNS) * 0.02)                  # heavy tails: outliers inside blocks
    rows.append(np.zeros(COLUMNS))                                  # all zero: the zero-scale paths
    rows.append(np.full(COLUMNS, 0.25))                             # constant: max == min
    r = np.zeros(COLUMNS); r[::37] = rng.normal(0, 1, len(r[::37])); rows.append(r)   # sparse
    rows.append(np.abs(rng.normal(0, 0.1, COLUMNS)))                # all positive (min > 0 clamps to 0)
    rows.append(-np.abs(rng.normal(0, 0.1, COLUMNS)))               # all negative
    r = rng.normal(0, 0.05, COLUMNS); r[5] = 40.0; r[300] = -55.0; rows.append(r)     # one outlier per block
    rows.append(rng.normal(0, 1e-6, COLUMNS))                       # scales in f16's subnormal range
    rows.append(rng.normal(0, 1e-9, COLUMNS))                       # below f16: scales round to zero
    rows.append(rng.normal(0, 2e4, COLUMNS))                        # large: scales near f16's largest
    rows.append(np.round(rng.normal(0, 4, COLUMNS)) * 0.125)        # exact grid values: rounding ties
    rows.append(rng.integers(-8, 8, COLUMNS) * 0.5)                 # few distinct values
    r = rng.normal(0, 0.05, COLUMNS); r[::16] = 0; rows.append(r)
    rows.append(np.linspace(-1, 1, COLUMNS))                        # monotone ramp
    rows.append(np.linspace(0, 3, COLUMNS) ** 3)
    r = rng.normal(0, 0.05, COLUMNS); r[:256] *= 1e-4; rows.append(r)                 # very different super-blocks
    r = np.zeros(COLUMNS); r[7] = 1.0; rows.append(r)               # one non-zero value
    r = np.zeros(COLUMNS); r[7] = -1.0; r[8] = 1e-12; rows.append(r)
    rows.append(rng.normal(0.3, 0.01, COLUMNS))                     # offset: the min carries the block
    # Non-finite and huge values (ggml's casts and comparisons decide what they become; libglm must agree).
    for specials in ([np.nan], [np.inf, -np.inf], [1e30, -1e30, np.nan, np.inf]):
        r = rng.normal(0, 0.05, COLUMNS)
        at = rng.integers(0, COLUMNS, 24)
        r[at] = np.resize(np.array(specials), len(at))
        rows.append(r)
    x = np.array(rows, dtype=np.float32)
    # Most real weights are bf16: round half the rows to bf16 values (ties and short mantissas are common then).
    bits = x.view(np.uint32).copy()
    bits[::2] = (bits[::2] + 0x7FFF + ((bits[::2] >> 16) & 1)) & 0xFFFF0000
    return bits.view(np.float32)


def ggml_quantize(lib, type_id, x, row_bytes):
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    out = np.zeros(x.shape[0] * row_bytes, np.uint8)
    n = lib.ggml_quantize_chunk(type_id, x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], None)
    assert n == out.size, (n, out.size)
    return out.tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf-py", required=True, help="folder holding the gguf package (llama.cpp's gguf-py)")
    ap.add_argument("--ggml-lib", required=True, help="llama.cpp's libggml-base.so")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    sys.path.insert(0, args.gguf_py)
    import gguf
    from gguf import quants

    lib = ctypes.CDLL(os.path.abspath(args.ggml_lib))
    x = make_input()
    os.makedirs(args.out, exist_ok=True)
    x.tofile(os.path.join(args.out, "input.f32"))
    for name, type_id in TYPES.items():
        qtype = gguf.GGMLQuantizationType[name]
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        ref = ggml_quantize(lib, type_id, x, COLUMNS // block * size)
        if name in GGUF_PY:   # on the finite rows (numpy's casts of NaN and Inf are not C's)
            finite = np.isfinite(x).all(axis=1)
            py = quants.quantize(x[finite], qtype).tobytes()
            row = COLUMNS // block * size
            ref_finite = b"".join(ref[i * row:(i + 1) * row] for i in np.nonzero(finite)[0])
            assert py == ref_finite, f"{name}: gguf-py and ggml disagree"
        with open(os.path.join(args.out, name + ".bin"), "wb") as f:
            f.write(ref)
        print(f"{name}: {len(ref)} bytes" + (" (gguf-py agrees)" if name in GGUF_PY else ""))


if __name__ == "__main__":
    main()
