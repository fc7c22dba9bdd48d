"""glm.Tokenizer against HF tokenizers' ids: real GGUF vocabularies (Qwen2, GPT-2) and GLM-like tokenizer.json."""
import collections

import pytest

import glm
from fixtures import FIXTURES, jsonl

TOKENIZERS = FIXTURES / "tokenizers"


def gguf_cases(name):
    # Each text is followed by "\n__ggml_vocab_test__\n"; each .out line holds one text's ids.
    texts = (TOKENIZERS / (name + ".inp")).read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    assert texts[-1] == ""
    texts = texts[:-1]
    outs = (TOKENIZERS / (name + ".out")).read_text(encoding="utf-8").split("\n")
    assert outs[-1] == ""
    outs = outs[:-1]
    assert len(texts) == len(outs)
    return [(t, [int(x) for x in o.split()]) for t, o in zip(texts, outs)]


@pytest.mark.parametrize("name", ["ggml-vocab-qwen2.gguf", "ggml-vocab-gpt-2.gguf"])
def test_real_vocabularies_match_hf(name):
    tok = glm.Tokenizer.from_file(TOKENIZERS / name)
    cases = gguf_cases(name)
    assert len(cases) > 20
    mismatches = [(text, tok.encode(text), ids) for text, ids in cases if tok.encode(text) != ids]
    assert mismatches == []


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
