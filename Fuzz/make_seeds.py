#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Fuzz/corpus/<target>/) from the committed fixtures.

Seeds are small on purpose (libFuzzer's mutations are cheap on small inputs): vocabularies are cut to a few hundred
tokens, templates over 8 KB are left out. Run from anywhere; it replaces Fuzz/corpus. Input layouts are those of
Fuzz/Sources/glm-fuzz/Targets.swift.
"""
import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "Tests" / "Fixtures"
CORPUS = ROOT / "Fuzz" / "corpus"
# Bytes that never occur in UTF-8: the part separators of the multi-part layouts.
PART = b"\xfe"
CHUNK = b"\xff"


def write(target, name, data):
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


# safetensors

def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    write("safetensors", "mixed", (FIXTURES / "formats" / "mixed.safetensors").read_bytes())
    write("safetensors", "empty", safetensors([]))
    write("safetensors", "metadata-only", safetensors([], {"format": "pt"}))
    write("safetensors", "f32", safetensors([("w", "F32", [2, 3], struct.pack("<6f", *range(6)))]))
    write("safetensors", "mixed-dtypes", safetensors([
        ("a.bf16", "BF16", [2, 2], b"\x80\x3f" * 4), ("b.f16", "F16", [3], b"\x00\x3c" * 3),
        ("c.i64", "I64", [1], struct.pack("<q", -5)), ("d.bool", "BOOL", [2], b"\x01\x00"),
        ("e.scalar", "F32", [], struct.pack("<f", 1.5)), ("f.empty", "F32", [0, 4], b""),
    ], {"format": "pt", "note": "seed"}))
    # A real shard's header (tensor names and shapes of the glm47 fixture) with its data cut off.
    shard = (FIXTURES / "models" / "glm47" / "model-00001-of-00002.safetensors").read_bytes()
    n = struct.unpack_from("<Q", shard)[0]
    write("safetensors", "glm47-header-truncated", shard[:8 + n + 64])


# GGUF

GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_read(data):
    """The metadata pairs of a GGUF file that holds no tensors (the vocabulary fixtures)."""
    pairs, tensors = gguf_read_model(data)
    assert not tensors, "vocabulary fixtures hold no tensors"
    return pairs


def gguf_write(pairs, tensors=(), alignment=32):
    """pairs: [(key bytes, type, value)]; tensors: [(name, dims, ggml type, raw bytes)]."""
    def string(s):
        return struct.pack("<Q", len(s)) + s

    def value(kind, v):
        if kind in GGUF_SCALARS:
            return struct.pack("<" + GGUF_SCALARS[kind], v)
        if kind == 8:
            return string(v)
        item, items = v
        return struct.pack("<IQ", item, len(items)) + b"".join(value(item, x) for x in items)

    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(pairs))
    for key, kind, v in pairs:
        out += string(key) + struct.pack("<I", kind) + value(kind, v)
    data = b""
    for name, dims, kind, raw in tensors:
        data += b"\0" * (-len(data) % alignment)
        out += string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", kind, len(data))
        data += raw
    out += b"\0" * (-len(out) % alignment)
    return out + data


def shrink_vocabulary(pairs, keep):
    """The first `keep` tokens: every per-token array cut to them, merges limited to kept tokens, ids clamped."""
    tokens = next(v for k, t, v in pairs if k == b"tokenizer.ggml.tokens")[1]
    vocab_size = len(tokens)
    kept = set(tokens[:keep])
    out = []
    for key, kind, v in pairs:
        if kind == 9 and len(v[1]) == vocab_size:
            v = (v[0], v[1][:keep])
        elif key == b"tokenizer.ggml.merges":
            merges = []
            for merge in v[1]:
                left, _, right = merge.partition(b" ")
                if left in kept and right in kept and left + right in kept:
                    merges.append(merge)
            v = (v[0], merges)
        elif key.endswith(b"_token_id") and kind in (4, 5) and v >= keep:
            v = keep - 1
        out.append((key, kind, v))
    return out


def gguf_seeds():
    tiny_tensors = [(b"token_embd.weight", [4, 2], 0, struct.pack("<8f", *range(8))),
                    (b"output_norm.weight", [4], 1, b"\x00\x3c" * 4)]
    for family in ["gpt-2", "llama-spm", "bert-bge", "qwen2", "llama-bpe", "command-r"]:
        pairs = gguf_read((FIXTURES / "tokenizers" / f"ggml-vocab-{family}.gguf").read_bytes())
        write("gguf", family, gguf_write(shrink_vocabulary(pairs, 400)))
    pairs = gguf_read((FIXTURES / "tokenizers" / "ggml-vocab-gpt-2.gguf").read_bytes())
    write("gguf", "gpt-2-with-tensors", gguf_write(shrink_vocabulary(pairs, 300), tiny_tensors))
    write("gguf", "tensors-only", gguf_write([(b"general.architecture", 8, b"llama"),
                                              (b"general.alignment", 4, 64)], tiny_tensors, alignment=64))


# GGUF models (the gguf-model target)

GGML_BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 30: (1, 2)}
VOCAB_TENSORS = (b"token_embd.weight", b"output.weight")
VOCAB_TENSOR_SUFFIXES = (b".nextn.embed_tokens.weight", b".nextn.shared_head_head.weight")


def gguf_read_model(data):
    """(pairs, tensors) of a GGUF model file: tensors as gguf_write takes them, data sliced out of the file."""
    pos = 0

    def take(fmt):
        nonlocal pos
        value = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return value

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return data[pos - n:pos]

    def value(kind):
        if kind in GGUF_SCALARS:
            return take(GGUF_SCALARS[kind])
        if kind == 8:
            return string()
        item = take("I")
        return (item, [value(item) for _ in range(take("Q"))])

    assert data[:4] == b"GGUF"
    pos = 4
    _, n_tensors, count = take("I"), take("Q"), take("Q")
    pairs = []
    for _ in range(count):
        key = string()
        kind = take("I")
        pairs.append((key, kind, value(kind)))
    alignment = next((v for k, t, v in pairs if k == b"general.alignment"), 32)
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, dims, take("I"), take("Q")))
    start = pos + (-pos % alignment)
    tensors = []
    for name, dims, kind, offset in infos:
        block, size = GGML_BLOCK[kind]
        elements = 1
        for d in dims:
            elements *= d
        tensors.append((name, dims, kind, data[start + offset:start + offset + elements // block * size]))
    return pairs, tensors


def small_model(path, vocab=32):
    """A fixture model cut down for fuzzing: no tokenizer metadata (the model loader does not read it), vocabulary
    matrices cut to their first `vocab` rows (rows are contiguous in ggml's layout, so a prefix of the bytes)."""
    pairs, tensors = gguf_read_model(path.read_bytes())
    pairs = [(k, t, v) for k, t, v in pairs if not k.startswith(b"tokenizer.") and not k.startswith(b"split.")]
    out = []
    for name, dims, kind, raw in tensors:
        if (name in VOCAB_TENSORS or name.endswith(VOCAB_TENSOR_SUFFIXES)) and len(dims) == 2 and dims[1] > vocab:
            raw = raw[:len(raw) // dims[1] * vocab]
            dims = [dims[0], vocab]
        out.append((name, dims, kind, raw))
    return pairs, out


def split_input(part1, part2):
    """The gguf-model target's two-file layout: 0x01, part 1's length (u32 LE), part 1, part 2."""
    return b"\x01" + struct.pack("<I", len(part1)) + part1 + part2


def gguf_model_seeds():
    models = FIXTURES / "models" / "glm-tiny-gguf"
    singles = {}
    for name in ["glm-tiny-q8_0", "glm-tiny-mixed", "glm-tiny-q8_0-gate_up", "glm-tiny-q8_0-qkv", "tied_shared2-f32"]:
        pairs, tensors = small_model(models / f"{name}.gguf")
        if name == "tied_shared2-f32":
            # Tied lm_head, two shared experts, MTP; its matrices as F16 (half the bytes, and the F16 path).
            tensors = [(n, d, 1, struct.pack(f"<{len(r) // 4}e", *struct.unpack(f"<{len(r) // 4}f", r)))
                       if k == 0 and len(d) >= 2 else (n, d, k, r) for n, d, k, r in tensors]
            name = "tied_shared2-f16"
        singles[name] = gguf_write(pairs, tensors)
        # 0x00: one file.
        write("gguf-model", name, b"\x00" + singles[name])
    # Cut short in the tensor infos (libFuzzer's own mutations shorten inputs too).
    write("gguf-model", "glm-tiny-q8_0-truncated-header", b"\x00" + singles["glm-tiny-q8_0"][:2000])
    # A split set as gguf-split writes it: split.no (0-based), split.count and split.tensors.count in every part.
    pairs, tensors = small_model(models / "glm-tiny-q8_0.gguf")
    half = len(tensors) // 2

    def part(no, items):
        keys = [(b"split.no", 2, no), (b"split.count", 2, 2), (b"split.tensors.count", 5, len(tensors))]
        head = [p for p in pairs if p[0] == b"general.architecture"]
        return gguf_write((pairs if no == 0 else head) + keys, items)

    first, second = part(0, tensors[:half]), part(1, tensors[half:])
    write("gguf-model", "split-q8_0", split_input(first, second))
    # Parts swapped (split.no disagrees with the file names) and a part holding a tensor the other holds too.
    write("gguf-model", "split-q8_0-swapped", split_input(second, first))
    write("gguf-model", "split-q8_0-duplicate", split_input(first, part(1, tensors[half - 1:])))


# config.json / generation_config.json

def config_seeds():
    for model in sorted((FIXTURES / "models").iterdir()):
        for name in ["config.json", "generation_config.json"]:
            if (model / name).exists():
                write("config", f"{model.name}-{name}", (model / name).read_bytes())
    for case in json.loads((FIXTURES / "formats" / "configs.json").read_text()):
        write("config", f"case-{case['name']}", json.dumps(case["config"], indent=1))
    write("config", "numbers", '{"a": [0, -0, 1e308, -1e-308, 12345678901234567890123, 1.5E+3, 0.1, -2.5e-7], '
                               '"s": "\\u00e9\\ud83d\\ude42\\n\\"", "n": null, "t": true, "o": {"": {}}}')


# tokenizer.json

def shrink_tokenizer_json(data, keep=400):
    vocab = data["model"]["vocab"]
    kept = {token: i for token, i in vocab.items() if i < keep}
    data["model"]["vocab"] = kept
    merges = []
    for merge in data["model"].get("merges", []):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        if left in kept and right in kept and left + right in kept:
            merges.append(merge)
    data["model"]["merges"] = merges
    return data


def tokenizer_seeds():
    sources = [FIXTURES / "tokenizers" / "glm-tiny" / "tokenizer.json"]
    sources += sorted((FIXTURES / "tokenizers" / "variants").glob("*.json"))
    for source in sources:
        data = shrink_tokenizer_json(json.loads(source.read_text(encoding="utf-8")))
        name = "glm-tiny" if source.parent.name == "glm-tiny" else source.stem
        write("tokenizer-json", name, json.dumps(data, ensure_ascii=False))


def tokenize_seeds():
    cases = [c for c in jsonl(FIXTURES / "tokenizers" / "encode_cases.jsonl") if c.get("tokenizer") == "glm-tiny"]
    for i, case in enumerate(cases[::max(1, len(cases) // 24)][:24]):
        write("tokenize", f"case-{i:02d}", case["text"])
    tests = (FIXTURES / "tokenizers" / "ggml-vocab-llama-bpe.gguf.inp").read_text(encoding="utf-8")
    for i, text in enumerate(t for t in tests.split("\n__ggml_vocab_test__\n") if t):
        if i % 3 == 0:
            write("tokenize", f"llama-test-{i:02d}", text)
    write("tokenize", "chat-markup", "[gMASK]<sop><|system|>Be brief.<|user|>Hi<|assistant|><think>ok</think>")


# Jinja

def jinja_seeds():
    templates = [FIXTURES / "templates" / "glm-4.7.jinja", FIXTURES / "templates" / "glm-4.5.jinja"]
    templates += sorted(p for p in (FIXTURES / "templates" / "chat").glob("*.jinja") if p.stat().st_size <= 8192)
    for path in templates:
        write("jinja", path.stem, path.read_bytes())
    for case in jsonl(FIXTURES / "templates" / "jinja_semantics.jsonl"):
        if "template" in case:
            variables = json.dumps(case.get("variables", {}), ensure_ascii=False).encode()
            write("jinja", case["name"], case["template"].encode() + CHUNK + variables)


# chat requests

def chat_request_seeds():
    for case in jsonl(FIXTURES / "templates" / "glm47_cases.jsonl"):
        if "messages" not in case:
            continue
        request = {"messages": case["messages"]}
        if case.get("tools"):
            request["tools"] = case["tools"]
        if case.get("kwargs"):
            request["chat_template_kwargs"] = case["kwargs"]
        write("chat-request", case["name"], json.dumps(request, ensure_ascii=False))
    write("chat-request", "sampling", json.dumps({
        "model": "glm", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.7, "top_p": 0.9,
        "top_k": 20, "min_p": 0.05, "seed": 42, "max_tokens": 16, "stop": ["\n\n", "END"], "presence_penalty": 0.5,
        "frequency_penalty": -0.5, "repetition_penalty": 1.1, "logit_bias": {"5": -100, "7": 3.5},
        "tool_choice": "none", "stream": True, "stream_options": {"include_usage": True}, "now": 1721730030}))


# model output

def stream_parser_seeds():
    for case in jsonl(FIXTURES / "parsers" / "parser_cases.jsonl"):
        thinking = case.get("prompt_tail", "").endswith("<think>")
        flags = bytes([1 if thinking else 0])
        tools = json.dumps(case.get("tools"), ensure_ascii=False).encode()
        chunks = CHUNK.join(chunk.encode() for chunk in case.get("stream_chunks") or [case["model_output"]])
        write("stream-parser", case["name"], flags + tools + PART + chunks)


# Inputs that fuzzing found (each also has a regression test): not generated from the fixtures, so kept as they are
# when the rest of the corpus is rebuilt.
FOUND_BY_FUZZING = ["tokenizer-json/post-processor-id-outside-vocabulary.json"]


def main():
    found = {name: (CORPUS / name).read_bytes() for name in FOUND_BY_FUZZING if (CORPUS / name).exists()}
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    for name, data in found.items():
        target, file = name.split("/", 1)
        write(target, file, data)
    safetensors_seeds()
    gguf_seeds()
    gguf_model_seeds()
    config_seeds()
    tokenizer_seeds()
    tokenize_seeds()
    jinja_seeds()
    chat_request_seeds()
    stream_parser_seeds()
    for target in sorted(CORPUS.iterdir()):
        files = list(target.iterdir())
        print(f"{target.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
