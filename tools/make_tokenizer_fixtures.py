#!/usr/bin/env python3
"""Generates the tokenizer fixtures in Tests/Fixtures/tokenizers/ with HF `tokenizers` and Python `regex`.

Rerun from the repository root:  python3 tools/make_tokenizer_fixtures.py
(needs: tokenizers, regex; deterministic, no network; takes about a minute).

Writes:
  glm-tiny/tokenizer.json, glm-tiny/tokenizer_config.json
      A GLM-like byte-level BPE trained here (GLM-4's split regex, ByteLevel without prefix space or regex,
      ignore_merges, ~4k merges) with GLM-4.7's added tokens appended in their order from
      shared/reference/tokenizer/special_tokens.json (special and non-special as there). It is also the
      vocabulary of the project's tiny demo model. tokenizer_config.json carries the GLM-4.7 chat template.
  variants/*.json
      The same vocabulary with other settings: merges as "a b" strings with some merges deleted (tokens then
      reachable only through ignore_merges); GPT-2 style ByteLevel(add_prefix_space, use_regex) with an NFC
      normalizer, a TemplateProcessing post-processor and lstrip/rstrip/single_word/normalized added tokens;
      a Sequence of Splits with every behavior, invert and Digits.
  encode_cases.jsonl   {"tokenizer", "text", "ids", "ids_with_special"} from HF tokenizers.
  decode_cases.jsonl   {"ids", "text", "text_skip_special"} from HF tokenizers (glm-tiny), random id runs
                       that cut UTF-8 characters.
  regex_cases.jsonl    {"text", "splits": {name: [piece lengths in code points]}} from HF's Split
                       (Oniguruma), checked here against Python `regex` (differences are printed).
"""

import json
import os
import random
import sys
import unicodedata

import regex
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_corpus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
REFERENCE = os.path.join(os.path.dirname(ROOT), "shared", "reference")

GLM_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PATTERNS = {
    "glm4": GLM_PATTERN,
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    "o200k": r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "deepseek_v3": r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "bailing_possessive": r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
    "features": r"\s+$|^\w+|(?>\d+)\.|[a-f]+?x|(?i:[A-Z]{2,3})\b|\P{L}{2}|[\u0400-\u04FF]+|😀|.",
}


def glm_added_tokens():
    with open(os.path.join(REFERENCE, "tokenizer", "special_tokens.json"), encoding="utf-8") as f:
        table = json.load(f)["added_tokens"]
    return [(t["content"], t["special"]) for t in sorted(table, key=lambda t: t["id"])]


def train_glm_tiny():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GLM_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=256 + 4000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(tokenizer_corpus.training_text(), trainer)
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(data))
    for content, special in glm_added_tokens():
        token = AddedToken(content, special=special, normalized=False, lstrip=False, rstrip=False, single_word=False)
        if special:
            tok.add_special_tokens([token])
        else:
            tok.add_tokens([token])
    return tok


def glm_tiny_config(tok):
    decoder = {}
    for content, special in glm_added_tokens():
        decoder[str(tok.token_to_id(content))] = {
            "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": special}
    with open(os.path.join(REFERENCE, "templates", "glm-4.7.jinja"), encoding="utf-8") as f:
        template = f.read()
    specials = [c for c, s in glm_added_tokens() if s]
    return {
        "added_tokens_decoder": decoder,
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": False,
        "eos_token": "<|endoftext|>",
        "extra_special_tokens": specials[1:],
        "model_max_length": 128000,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "remove_space": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def variant_merges_dropped(base_json):
    data = json.loads(base_json)
    rng = random.Random(11)
    merges = data["model"]["merges"]
    kept = [m for i, m in enumerate(merges) if i < 300 or rng.random() > 0.15]
    # "a b" string form (older tokenizer.json files).
    data["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in kept]
    data["model"]["ignore_merges"] = True
    return Tokenizer.from_str(json.dumps(data))


def variant_gpt2_style(base_json):
    data = json.loads(base_json)
    data["model"]["ignore_merges"] = False
    data["normalizer"] = {"type": "NFC"}
    data["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    for t in data["added_tokens"]:
        if t["content"] == "<think>":
            t["lstrip"] = True
        if t["content"] == "</think>":
            t["rstrip"] = True
        if t["content"] == "/nothink":
            t["single_word"] = True
        if t["content"] in ("<arg_key>", "</arg_key>"):
            t["normalized"] = True
    tok = Tokenizer.from_str(json.dumps(data))
    gmask, sop, eot = tok.token_to_id("[gMASK]"), tok.token_to_id("<sop>"), tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="[gMASK] <sop> $A <|endoftext|>", pair="[gMASK] <sop> $A $B <|endoftext|>",
        special_tokens=[("[gMASK]", gmask), ("<sop>", sop), ("<|endoftext|>", eot)])
    return tok


def variant_behaviors(base_json):
    data = json.loads(base_json)
    data["model"]["ignore_merges"] = False
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": "\n"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"[,;:]"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\p{P}+"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\s+"}, "behavior": "Isolated", "invert": True},
        {"type": "Split", "pattern": {"Regex": r"\t"}, "behavior": "Removed", "invert": False},
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
    ]}
    return Tokenizer.from_str(json.dumps(data))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def main():
    glm = train_glm_tiny()
    base_json = glm.to_str()
    os.makedirs(os.path.join(OUT, "glm-tiny"), exist_ok=True)
    glm.save(os.path.join(OUT, "glm-tiny", "tokenizer.json"))
    write_json(os.path.join(OUT, "glm-tiny", "tokenizer_config.json"), glm_tiny_config(glm))

    variants = {
        "merges-dropped": variant_merges_dropped(base_json),
        "gpt2-style": variant_gpt2_style(base_json),
        "behaviors": variant_behaviors(base_json),
    }
    os.makedirs(os.path.join(OUT, "variants"), exist_ok=True)
    for name, tok in variants.items():
        data = json.loads(tok.to_str())
        # Keep the variants small: one line per file, no indentation.
        with open(os.path.join(OUT, "variants", name + ".json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    added = [c for c, _ in glm_added_tokens()]
    counts = {"glm-tiny": 2000, "merges-dropped": 400, "gpt2-style": 400, "behaviors": 300}
    with open(os.path.join(OUT, "encode_cases.jsonl"), "w", encoding="utf-8") as f:
        for name, count in counts.items():
            tok = glm if name == "glm-tiny" else variants[name]
            texts = tokenizer_corpus.corpus(seed=len(name) * 7919 + counts[name], count=count,
                                            pieces=(1, 8), added_tokens=added)
            texts += ["", " ", "\n", "a", "'s", " " * 300, "\n" * 50, "1" * 100, "好" * 200,
                      "<think></think>", "a<think>b", "x /nothink y", "x/nothink", "<|user|><|user|>"]
            skipped = 0
            for text in texts:
                if tok.normalizer is not None and tok.normalizer.normalize_str(text) != unicodedata.normalize("NFC", text):
                    # HF's NFC (unicode-normalization crate) leaves some out-of-order combining marks
                    # unsorted (e.g. U+1E018 U+10F4D); Unicode's NFC (Python, Swift) reorders them.
                    skipped += 1
                    continue
                ids = tok.encode(text, add_special_tokens=False).ids
                with_special = tok.encode(text, add_special_tokens=True).ids
                case = {"tokenizer": name, "text": text, "ids": ids}
                if with_special != ids:
                    case["ids_with_special"] = with_special
                f.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")) + "\n")
            if skipped:
                print(f"{name}: {skipped} texts skipped where HF's NFC differs from Unicode NFC")

    rng = random.Random(5)
    vocab_size = glm.get_vocab_size(with_added_tokens=True)
    with open(os.path.join(OUT, "decode_cases.jsonl"), "w", encoding="utf-8") as f:
        samples = tokenizer_corpus.corpus(seed=99, count=300, added_tokens=added)
        for i, text in enumerate(samples):
            ids = glm.encode(text, add_special_tokens=False).ids
            if i % 3 == 1 and ids:
                # Cut at random places and splice in random ids, so UTF-8 characters are broken.
                a, b = sorted(rng.sample(range(len(ids) + 1), 2)) if len(ids) > 1 else (0, len(ids))
                ids = ids[a:b] + [rng.randrange(vocab_size) for _ in range(rng.randint(1, 6))]
            elif i % 3 == 2:
                ids = [rng.randrange(vocab_size) for _ in range(rng.randint(1, 40))]
            f.write(json.dumps({"ids": ids, "text": glm.decode(ids, skip_special_tokens=False),
                                "text_skip_special": glm.decode(ids, skip_special_tokens=True)},
                               ensure_ascii=False, separators=(",", ":")) + "\n")

    splitters = {n: pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for n, p in PATTERNS.items()}
    # Oniguruma's Ruby syntax has `^`/`$` match at every line boundary: Python's MULTILINE.
    compiled = {n: regex.compile(p, regex.MULTILINE) for n, p in PATTERNS.items()}
    texts = tokenizer_corpus.corpus(seed=2024, count=1500, pieces=(1, 10), added_tokens=added)
    differences = 0
    by_pattern = {}
    with open(os.path.join(OUT, "regex_cases.jsonl"), "w", encoding="utf-8") as f:
        for text in texts:
            splits = {}
            for name in PATTERNS:
                hf = [piece for piece, _ in splitters[name].pre_tokenize_str(text)]
                py, prev = [], 0
                for m in compiled[name].finditer(text):
                    if m.start() == m.end():
                        continue
                    if m.start() > prev:
                        py.append(text[prev:m.start()])
                    py.append(m.group())
                    prev = m.end()
                if prev < len(text):
                    py.append(text[prev:])
                if hf != py:
                    differences += 1
                    by_pattern[name] = by_pattern.get(name, 0) + 1
                    if differences <= 5:
                        print(f"python regex and HF differ for {name} on {text!r}:\n  hf={hf}\n  py={py}")
                # HF offsets are in bytes; store piece lengths in code points.
                splits[name] = [len(p) for p in hf]
            f.write(json.dumps({"text": text, "splits": splits}, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"regex: {len(texts)} texts x {len(PATTERNS)} patterns, {differences} python/HF differences {by_pattern}")
    for name in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, name)
        if os.path.isfile(p):
            print(f"{name}: {os.path.getsize(p) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
