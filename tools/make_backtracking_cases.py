#!/usr/bin/env python3
"""Generates Tests/Fixtures/tokenizers/backtracking_cases.jsonl: random small patterns with nested, alternated,
lazy, possessive and atomic quantifiers, lookaheads and anchors, each with short texts, split by HF `tokenizers`
(`Split(Regex(pattern), "isolated")`, i.e. Oniguruma). They check that the regex VM's memo of explored states
(Sources/GLMTokenizer/PatternRegex.swift) never changes a split: the shipped pre-tokenizer patterns barely
exercise it, these do.

Rerun from the repository root:  python3 tools/make_backtracking_cases.py
(needs: tokenizers; deterministic, no network; a few seconds).

Each line: {"pattern", "texts": [...], "pieces": [[piece lengths in code points] per text]}.
Cases Oniguruma itself gives up on (retry limit) are left out.
"""

import json
import os
import random

from tokenizers import Regex, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "backtracking_cases.jsonl")

# Each generator returns (pattern text, can match empty).
SETS = [("a", False), ("b", False), (" ", False), ("\\n", False), ("[ab]", False), ("[^a]", False), ("\\s", False),
        ("\\S", False), (".", False), ("\\w", False)]


def atom(rng, depth):
    r = rng.random()
    if depth >= 2 or r < 0.6:
        return rng.choice(SETS)
    body, empty = alternation(rng, depth + 1)
    kind = rng.choice(["(?:", "(?:", "(?:", "(?>", "(?=", "(?!"])
    if kind in ("(?=", "(?!"):
        return (kind + body + ")", True)
    return (kind + body + ")", empty)


def quantified(rng, depth):
    text, empty = atom(rng, depth)
    if text.startswith("(?=") or text.startswith("(?!"):
        return text, True
    r = rng.random()
    if r < 0.35:
        return text, empty
    bounded = [("?", True), ("{0,2}", True), ("{1,3}", empty), ("{2}", empty)]
    unbounded = [("*", True), ("+", empty), ("{2,}", empty)]
    choices = bounded + ([] if empty else unbounded)
    q, q_empty = rng.choice(choices)
    mode = rng.choice(["", "", "?", "+"])
    if q.startswith("{") and (mode == "+" or (mode == "?" and "," not in q)):
        # Oniguruma's Ruby syntax reads `{n,m}+` as an interval followed by `+`, and `{n}?` as an optional `{n}`.
        mode = ""
    return text + q + mode, q_empty


def concat(rng, depth):
    items, empty = [], True
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.08:
            items.append(rng.choice(["$", "\\b", "\\B"]))
            continue
        text, e = quantified(rng, depth)
        items.append(text)
        empty = empty and e
    return "".join(items), empty


def alternation(rng, depth):
    branches = [concat(rng, depth) for _ in range(rng.randint(1, 3))]
    return "|".join(b for b, _ in branches), any(e for _, e in branches)


def texts(rng):
    out = []
    for _ in range(6):
        n = rng.randint(0, 14)
        out.append("".join(rng.choice("aab \n") for _ in range(n)))
    out.append("a" * rng.randint(5, 20) + rng.choice(["!", "b", "", " "]))
    out.append((rng.choice(["ab", "a ", " \n", "ba"]) * rng.randint(3, 8)))
    return out


def main():
    rng = random.Random(17)
    cases, skipped = [], 0
    while len(cases) < 400:
        pattern, empty = alternation(rng, 0)
        if empty:
            continue
        try:
            split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        except Exception:
            skipped += 1
            continue
        case = {"pattern": pattern, "texts": [], "pieces": []}
        for text in texts(rng):
            try:
                pieces = [piece for piece, _ in split.pre_tokenize_str(text)]
            except BaseException:  # Oniguruma's retry limit surfaces as a panic
                skipped += 1
                continue
            assert "".join(pieces) == text
            case["texts"].append(text)
            case["pieces"].append([len(p) for p in pieces])
        cases.append(case)
    with open(OUT, "w", encoding="utf-8") as f:
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} patterns to {OUT} ({skipped} patterns or texts skipped)")


if __name__ == "__main__":
    main()
