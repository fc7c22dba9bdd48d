"""glm.Tokenizer against HF tokenizers' ids: real GGUF vocabularies (one per byte-level BPE pre-tokenizer family in
llama.cpp's test set) and GLM-like tokenizer.json; GGUF vocabularies of other kinds are refused clearly."""
import collections
import json
import re
import struct

import pytest

import glm
from fixtures import FIXTURES, jsonl

TOKENIZERS = FIXTURES / "tokenizers"


# One vocabulary per `tokenizer.ggml.pre` family (tools/copy_llama_vocab_fixtures.py); the same list as
# Tests/GLMTokenizerTests/RealVocabularyTests.swift.
BYTE_LEVEL_FAMILIES = ["gpt-2", "qwen2", "qwen35", "llama-bpe", "deepseek-llm", "deepseek-coder", "falcon", "mpt",
                       "starcoder", "refact", "command-r"]


def gguf_cases(name):
    # llama.cpp's tests/test-tokenizer-0 format: each text is followed by "\n__ggml_vocab_test__\n"; each .out line
    # holds one text's ids (from HF tokenizers, no special tokens), space separated.
    texts = (TOKENIZERS / (name + ".inp")).read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    assert texts[-1] == ""
    texts = texts[:-1]
    outs = (TOKENIZERS / (name + ".out")).read_text(encoding="utf-8").split("\n")
    assert outs[-1] == ""
    outs = outs[:-1]
    assert len(texts) == len(outs)
    return [(t, [int(x) for x in o.split()]) for t, o in zip(texts, outs)]


@pytest.mark.parametrize("family", BYTE_LEVEL_FAMILIES)
def test_real_vocabularies_match_hf(family):
    name = f"ggml-vocab-{family}.gguf"
    tok = glm.Tokenizer.from_file(TOKENIZERS / name)
    cases = gguf_cases(name)
    assert len(cases) >= 46
    mismatches = [(text, tok.encode(text), ids) for text, ids in cases if tok.encode(text) != ids]
    assert mismatches == []
    assert [text for text, ids in cases if tok.decode(ids) != text] == []


@pytest.mark.parametrize("name, model", [("ggml-vocab-llama-spm.gguf", "'llama' (SentencePiece)"),
                                         ("ggml-vocab-bert-bge.gguf", "'bert' (WordPiece)")])
def test_non_bpe_vocabularies_are_refused(name, model):
    with pytest.raises(glm.UnsupportedError, match=re.escape(f"tokenizer model {model} is not supported")) as error:
        glm.Tokenizer.from_file(TOKENIZERS / name)
    assert name in str(error.value)


def metadata_only_gguf(path, pairs):
    """A little-endian GGUF v3 file with no tensors and only string metadata."""
    data = struct.pack("<IIQQ", 0x46554747, 3, 0, len(pairs))
    for key, value in pairs:
        k, v = key.encode(), value.encode()
        data += struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, len(v)) + v
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("pairs, message", [
    ([("tokenizer.ggml.model", "t5")], "tokenizer model 't5' (Unigram) is not supported"),
    ([("tokenizer.ggml.model", "rwkv")], "tokenizer model 'rwkv' (RWKV) is not supported"),
    ([("tokenizer.ggml.model", "gemma4")], "tokenizer model 'gemma4' (BPE on raw UTF-8, not byte-level) is not supported"),
    ([("tokenizer.ggml.model", "gpt2")], "no tokenizer.ggml.pre"),
    ([("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "default")], "pre-tokenizer 'default' is not supported"),
    ([("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "poro-chat")], "pre-tokenizer 'poro-chat' is not supported"),
])
def test_unsupported_gguf_tokenizers_are_refused(tmp_path, pairs, message):
    path = metadata_only_gguf(tmp_path / "vocab.gguf", pairs)
    with pytest.raises(glm.UnsupportedError, match=re.escape(message)):
        glm.Tokenizer.from_file(path)


def test_glm_like_encode_cases_match_hf():
    cases = [c for c in jsonl("tokenizers", "encode_cases.jsonl") if c["tokenizer"] == "glm-tiny"]
    assert len(cases) > 500
    tok = glm.Tokenizer.from_file(TOKENIZERS / "glm-tiny")
    bad = [c["text"] for c in cases if tok.encode(c["text"]) != c["ids"]]
    assert bad == []


def test_decode_cases():
    tok = glm.Tokenizer.from_file(TOKENIZERS / "glm-tiny")
    cases = jsonl("tokenizers", "decode_cases.jsonl")
    assert cases
    for case in cases:
        expected = case["text"]
        assert tok.decode(case["ids"], skip_special_tokens=case.get("skip_special_tokens", False)) == expected


def test_added_tokens_and_vocabulary_queries():
    tok = glm.Tokenizer.from_file(TOKENIZERS / "glm-tiny" / "tokenizer.json")
    think = tok.token_to_id("<think>")
    user = tok.token_to_id("<|user|>")
    assert think is not None and user is not None
    assert tok.encode("<|user|>hi<think>") [0] == user
    assert think in tok.encode("a<think>b")
    assert tok.is_special(user) and not tok.is_special(think)
    assert tok.decode([user, think], skip_special_tokens=True) == "<think>"
    assert tok.token_to_id("definitely not a token ✗✗") is None
    assert tok.vocab_size == len(tok) > 1000
    piece = tok.token_to_piece(tok.encode("é")[0])
    assert isinstance(piece, bytes)


def test_bad_input_raises_not_crashes(tmp_path):
    tok = glm.Tokenizer.from_file(TOKENIZERS / "glm-tiny")
    with pytest.raises(glm.InvalidArgumentError, match="out of range"):
        tok.decode([tok.vocab_size])
    with pytest.raises(glm.InvalidArgumentError):
        tok.decode([-1])
    with pytest.raises(ValueError):
        tok.decode([2**40])
    with pytest.raises(glm.GLMIOError):
        glm.Tokenizer.from_file(tmp_path / "missing.json")
    broken = tmp_path / "tokenizer.json"
    broken.write_text('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [')
    with pytest.raises(glm.GLMError):
        glm.Tokenizer.from_file(broken)
    truncated = tmp_path / "t.gguf"
    truncated.write_bytes((TOKENIZERS / "ggml-vocab-gpt-2.gguf").read_bytes()[:5000])
    with pytest.raises(glm.FormatError):
        glm.Tokenizer.from_file(truncated)


@pytest.mark.parametrize("variant", ["nfkc", "nfkd-sequence"])
def test_unicode_normalizers_match_hf(variant):
    tok = glm.Tokenizer.from_file(TOKENIZERS / "variants" / (variant + ".json"))
    cases = [c for c in jsonl("tokenizers", "normalizer_encode_cases.jsonl") if c["tokenizer"] == variant]
    assert len(cases) >= 300
    assert [c["text"] for c in cases if tok.encode(c["text"]) != c["ids"]] == []


def _in_child(code, *args, timeout):
    """Runs `code` in a fresh interpreter with this source tree's glm package; a hang becomes a timeout."""
    import os
    import subprocess
    import sys
    package = str(FIXTURES.parents[1] / "bindings" / "python")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


# 10 MB runs of one unit through glm_tokenize, with the ids worked out by hand from glm-tiny's vocabulary and
# GLM-4's split pattern (the same reasoning as Tests/GLMTokenizerTests/PatternComplexityTests.swift; equal to
# HF tokenizers' on runs of 999,999 scalars, while HF itself gives up on 10 MB of spaces with an Oniguruma
# retry-limit error). Issue 17: 10.1 MB of spaces used to never return.
LONG_RUNS_CHILD = r"""
import sys, glm
tok = glm.Tokenizer.from_file(sys.argv[1])
N = 10_000_000
runs = [
    ("spaces", " " * N, [891] * (N // 32)),              # one piece; 'Ġ'x32 pairs up from 2, 4, 8, 16 spaces
    ("newlines", "\n" * N, [297] * (N // 2)),            # one piece of 'ĊĊ'
    ("newline-space", "\n " * (N // 2), [198, 220] * (N // 2)),  # to the last newline, then the final space
    ("tabs", "\t" * N, [197] * N),                       # no token of two tabs
    ("cjk", "中" * (N // 3), [1799, 255] * (N // 3)),    # E4 B8 | AD
    ("digits", "1" * (N // 3 * 3), [1262, 16] * (N // 3)),  # pieces of three: '11' + '1'
    ("letters", "a" * N, [64] * N),                      # no 'aa' token
]
for name, text, expected in runs:
    ids = tok.encode(text)
    print(name, len(ids), ids == expected)
"""


def test_ten_megabyte_runs_encode_to_hand_derived_ids():
    out = _in_child(LONG_RUNS_CHILD, TOKENIZERS / "glm-tiny", timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == [
        "spaces 312500 True", "newlines 5000000 True", "newline-space 10000000 True", "tabs 10000000 True",
        "cjk 6666666 True", "digits 6666666 True", "letters 10000000 True", ""]


HOSTILE_CHILD = r"""
import sys, glm
tok = glm.Tokenizer.from_file(sys.argv[1])
print(tok.encode("aaaa!") != [])
try:
    tok.encode("a" * 5000 + "!")
    print("returned")
except glm.LimitExceededError as e:
    print("LimitExceededError", e)
"""


def test_backtracking_pre_tokenizer_regex_raises_limit_exceeded(tmp_path):
    # glm-tiny with the classic catastrophic pattern as its Split regex: it used to run without end.
    data = json.loads((TOKENIZERS / "glm-tiny" / "tokenizer.json").read_text(encoding="utf-8"))
    split = data["pre_tokenizer"]["pretokenizers"][0]
    assert split["type"] == "Split"
    split["pattern"]["Regex"] = "(a+)+$"
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    out = _in_child(HOSTILE_CHILD, tmp_path / "tokenizer.json", timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split("\n", 1)
    assert first == "True"
    assert second.startswith("LimitExceededError pre-tokenizer regex '(a+)+$' exceeded its matching budget")
    assert "PatternBudget" in second
