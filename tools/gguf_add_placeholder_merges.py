#!/usr/bin/env python3
"""Copies a GGUF file adding a one-entry `tokenizer.ggml.merges` array, for llama.cpp benchmarks of synthetic models.

    python3 tools/gguf_add_placeholder_merges.py IN.gguf OUT.gguf

llama.cpp refuses a "gpt2" vocabulary without merges ("cannot find tokenizer merges in model file"); the synthetic
GLM-4.7-shaped model's GGUF (converted from a directory without tokenizer merges) has none, so llama-bench cannot load
it. llama-bench never tokenizes text (it feeds token ids), so one placeholder merge is enough. Everything else is
copied byte for byte: the key-value section gains one entry, tensor infos and the aligned data section are unchanged
(tensor offsets are relative to the data section). Streams the data; needs only the standard library.
"""
import shutil
import struct
import sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # fixed-size GGUF value types
STRING, ARRAY = 8, 9


def skip_value(f, vtype):
    if vtype == STRING:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(n, 1)
    elif vtype == ARRAY:
        etype, count = struct.unpack("<IQ", f.read(12))
        if etype == STRING:
            for _ in range(count):
                skip_value(f, STRING)
        else:
            f.seek(SIZES[etype] * count, 1)
    else:
        f.seek(SIZES[vtype], 1)


def read_string(f):
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n).decode()


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        magic, version, n_tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
        assert magic == b"GGUF" and version == 3, (magic, version)
        kv_start = f.tell()
        alignment = 32
        for _ in range(n_kv):
            key = read_string(f)
            (vtype,) = struct.unpack("<I", f.read(4))
            if key == "general.alignment":
                (alignment,) = struct.unpack("<I", f.read(4))
                continue
            if key == "tokenizer.ggml.merges":
                sys.exit(f"{src} already has tokenizer.ggml.merges")
            skip_value(f, vtype)
        kv_end = f.tell()
        for _ in range(n_tensors):
            read_string(f)
            (n_dims,) = struct.unpack("<I", f.read(4))
            f.seek(8 * n_dims + 4 + 8, 1)
        infos_end = f.tell()
        data_start = (infos_end + alignment - 1) // alignment * alignment
        f.seek(kv_start)
        kvs = f.read(kv_end - kv_start)
        infos = f.read(infos_end - kv_end)
        key = b"tokenizer.ggml.merges"
        merge = "<t0> <t1>".encode()
        extra = (struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", ARRAY, STRING, 1)
                 + struct.pack("<Q", len(merge)) + merge)
        with open(dst, "wb") as out:
            out.write(struct.pack("<4sIQQ", magic, version, n_tensors, n_kv + 1))
            out.write(kvs + extra + infos)
            out.write(b"\0" * (-out.tell() % alignment))
            f.seek(data_start)
            shutil.copyfileobj(f, out, 64 << 20)


if __name__ == "__main__":
    main()
