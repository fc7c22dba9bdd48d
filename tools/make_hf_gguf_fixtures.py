#!/usr/bin/env python3
"""Makes the HF → GGUF fixture of glm_quantize (Tests/Fixtures/models/glm-tiny-gguf/hf-convert.json): what llama.cpp's
`convert_hf_to_gguf.py` followed by `llama-quantize OUT TYPE` writes for Hugging Face checkpoints of
Tests/Fixtures/models, recorded per output type as the metadata (each key in file order with the SHA-256 of its
stored bytes: key, value type, value) and the tensors (name, ggml type, ggml dimensions, SHA-256 of the data), plus
the file's size and SHA-256 and those of its tensor data section. The Swift test HFCheckpointQuantizeTests and bindings/python/tests/test_quantize_hf.py
convert the same directories with libglm and compare entry by entry (no GGUF bytes are committed).

Sources (each converted with --outtype of its lossless type, as libglm stores the tensors before quantising):
  glm-tiny-chat   bf16, with tokenizer and chat template (the tokenizer metadata is compared too)    --outtype bf16
  air             bf16, MTP layer (blk.3.nextn.*), 8 experts                                           --outtype bf16
  fp8/channel     compressed-tensors FP8, one scale per row (BF16 scales), ignored router/lm_head    --outtype f32
  fp8/deepseek    DeepSeek-style "fp8", 128x128 block scales (weight_scale_inv)                        --outtype f32
air and the FP8 models have no tokenizer: the converter gets a placeholder vocabulary (tools/make_gguf_models.py's
FAKE_VOCAB), which libglm does not write, so the fixture marks them "placeholder_vocabulary" and the tests leave the
tokenizer.* keys out. The converter's tokenizer hash does not know the tiny tokenizer; it is told "glm4" (what it
writes for GLM-4.5..4.7), as make_gguf_models.py does. (fp8/tensor, one scale per tensor, is not here: this
converter asserts channel or block strategies for compressed-tensors.)

    python tools/make_hf_gguf_fixtures.py --llama-cpp .../vendor/llama.cpp

--llama-cpp is llama.cpp's source tree with its build in build/ (llama-quantize). Development tools only.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODELS = os.path.join(ROOT, "Tests", "Fixtures", "models")
OUT = os.path.join(MODELS, "glm-tiny-gguf", "hf-convert.json")
SOURCES = {  # directory (under Tests/Fixtures/models): (outtype, placeholder vocabulary)
    "glm-tiny-chat": ("bf16", False),
    "air": ("bf16", True),
    "fp8/channel": ("f32", True),
    "fp8/deepseek": ("f32", True),
}
TYPES = {"glm-tiny-chat": ["Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "Q2_K", "F16", "BF16", "F32"], "air": ["Q8_0", "Q4_K_M", "Q5_K_M"],
         "fp8/channel": ["Q8_0", "Q4_K_M", "F32"], "fp8/deepseek": ["Q8_0", "Q3_K_M"]}


def describe(gguf, path):
    r = gguf.GGUFReader(path)
    keys = []
    for field in r.fields.values():
        if field.name.startswith("GGUF."):
            continue
        raw = b"".join(bytes(p.tobytes()) for p in field.parts)
        keys.append([field.name, hashlib.sha256(raw).hexdigest()])
    tensors = []
    for t in r.tensors:
        tensors.append([t.name, t.tensor_type.name, [int(d) for d in t.shape],
                        hashlib.sha256(bytes(t.data.tobytes())).hexdigest()])
    data = open(path, "rb").read()
    # The tensor data section (from the aligned end of the header to the end of the file): the same bytes in
    # libglm's file, whose header differs only by the keys it does not write.
    section = data[r.data_offset:]
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "keys": keys, "tensors": tensors,
            "data_size": len(section), "data_sha256": hashlib.sha256(section).hexdigest()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True)
    args = ap.parse_args()
    llama = os.path.abspath(args.llama_cpp)
    sys.path.insert(0, os.path.join(llama, "gguf-py"))
    sys.path.insert(0, os.path.dirname(__file__))
    import gguf
    from make_gguf_models import convert

    quantize = os.path.join(llama, "build", "bin", "llama-quantize")
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source, (outtype, placeholder) in SOURCES.items():
            converted = os.path.join(tmp, "converted.gguf")
            convert(llama, ["--outtype", outtype, "--outfile", converted, os.path.join(MODELS, source)],
                    fake_vocab=placeholder)
            entry = {"outtype": outtype, "placeholder_vocabulary": placeholder, "outputs": {}}
            for t in TYPES[source]:
                out = os.path.join(tmp, "out.gguf")
                subprocess.run([quantize, converted, out, t, "1"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                entry["outputs"][t] = describe(gguf, out)
                print(source, t, entry["outputs"][t]["size"])
                os.remove(out)
            result[source] = entry
    with open(OUT, "w") as f:
        json.dump(result, f, indent=0, sort_keys=True)
        f.write("\n")
    print(OUT, os.path.getsize(OUT))


if __name__ == "__main__":
    main()
