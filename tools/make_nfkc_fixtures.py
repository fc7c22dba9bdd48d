#!/usr/bin/env python3
"""Generates the Unicode-normalization fixtures in Tests/Fixtures/tokenizers/ with HF `tokenizers` and unicodedata.

Rerun from the repository root, after tools/make_tokenizer_fixtures.py:  python3 tools/make_nfkc_fixtures.py
(needs: tokenizers; deterministic, no network; takes a few seconds).

Writes:
  variants/nfkc.json            glm-tiny's vocabulary and pre-tokenizer with an NFKC normalizer.
  variants/nfkd-sequence.json   the same with a Sequence [NFKD, Lowercase] normalizer.
  normalizer_encode_cases.jsonl {"tokenizer", "text", "ids"} from HF tokenizers: ~300 strings per tokenizer rich in
                                compatibility characters (full-width forms, ligatures, super/subscripts, circled
                                and squared forms, Roman numerals, half-width katakana, Hangul, combining marks,
                                Arabic presentation forms, math alphanumerics) plus ordinary text.
  normalization_cases.jsonl     {"text", "nfc", "nfd", "nfkc", "nfkd"} from Python unicodedata (a form equal to
                                "text" is omitted): every code point of
                                tools/make_unicode_tables.py's table in context, then random mixes. Only strings on
                                which HF's NFKC agrees with unicodedata's are kept (HF uses older Unicode data).
"""

import json
import os
import random
import unicodedata

from tokenizers import Tokenizer, normalizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")

POOLS = {
    "fullwidth": list(range(0xFF01, 0xFF5F)),
    "ligatures": list(range(0xFB00, 0xFB07)) + [0x132, 0x133, 0x1C4, 0x1C5, 0x1C6, 0x1F1, 0x1F2, 0x1F3, 0x149],
    "scripts": [0xB2, 0xB3, 0xB9, 0xAA, 0xBA] + list(range(0x2070, 0x209D)) + list(range(0x1D2C, 0x1D6B)),
    "circled": list(range(0x2460, 0x24FF)) + list(range(0x3251, 0x32BF)) + list(range(0x3200, 0x321F)),
    "squared": list(range(0x3300, 0x33FF)) + list(range(0x1F110, 0x1F16B)),
    "roman": list(range(0x2150, 0x2189)),
    "halfwidth_kana": list(range(0xFF61, 0xFFA0)),
    "hangul": list(range(0xAC00, 0xAC40)) + list(range(0x1100, 0x1176)) + list(range(0x11A8, 0x11C3))
              + list(range(0x3131, 0x318F)) + list(range(0xFFA0, 0xFFDD)),
    "combining": list(range(0x300, 0x370)) + [0x3099, 0x309A, 0x5B0, 0x5B4, 0x65E, 0x1DC0, 0x20D0],
    "arabic_forms": list(range(0xFB50, 0xFBB2)) + list(range(0xFE70, 0xFEFD)) + list(range(0xFDF0, 0xFDFE)),
    "math": list(range(0x1D400, 0x1D7FF)),
    "misc": [0xA0, 0xA8, 0xAF, 0xB4, 0xB5, 0xB8, 0xBC, 0xBD, 0xBE, 0x17F, 0x2002, 0x2009, 0x2011, 0x2024, 0x2025,
             0x2026, 0x2033, 0x203C, 0x2047, 0x2103, 0x2109, 0x2116, 0x2122, 0x212B, 0x2126, 0x3000, 0x309B,
             0xFE4F, 0xFE35, 0xFE10, 0x3231, 0x1E9B, 0x3D2, 0x3D3, 0x385, 0x1FED, 0x2ADC, 0xFDFA],
    "plain": [ord(c) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'-\n\t"]
             + [ord(c) for c in "éüñçåøßàÀÉçœ"] + [ord(c) for c in "的一是不了人我在有他这中大来上国个到说们"]
             + [ord(c) for c in "かがきぎカガキギアイウエオ"] + [0x1F600, 0x1F44D],
}
WORDS = ["Hello", " world", " the", " tokenizer", " 2024", " café", " naïve", " 東京", " 서울", " Ｈｅｌｌｏ", "ﬁle",
         " ﬂow", " x²", " ①②③", " ㎏", " Ⅻ", " ｶﾞｷﾞ", " ﻼ", " ﷺ", " ㈱", "…", " ½", " 𝐁𝐨𝐥𝐝", " ℃", " ™", "\n", "  "]


def tokenizer_with(base, normalizer):
    data = json.loads(base.to_str())
    data["normalizer"] = normalizer
    return Tokenizer.from_str(json.dumps(data))


def random_text(rng):
    parts = []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.3:
            parts.append(rng.choice(WORDS))
            continue
        pool = POOLS[rng.choice(list(POOLS))]
        parts.append("".join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 5))))
    return "".join(c for c in "".join(parts) if unicodedata.category(c) != "Cn")


def encode_texts(rng):
    texts = ["", " ", "ﬁ", "²", "①", "㎏", "Ⅻ", "ｶﾞ", "ﻼ", "Ｈｅｌｌｏ　Ｗｏｒｌｄ", "e\u0301", "e\u0323\u0302", "a\u0302\u0323",
             "\u1100\u1161\u11A8", "각", "ㄱㅏ", "ﾡﾂ", "ﷺ", "ﷻ", "𝕋𝕖𝕩𝕥", "The quick brown fox.", "中文文本"]
    texts += [chr(cp) for cp in (0x32FF, 0xA7F2, 0x1F16C, 0x1FBF0, 0x10781)]  # HF leaves these unchanged
    while len(texts) < 300:
        texts.append(random_text(rng))
    return texts


def forms(text):
    return {f.lower(): unicodedata.normalize(f, text) for f in ("NFC", "NFD", "NFKC", "NFKD")}


def main():
    rng = random.Random(2027)
    base = Tokenizer.from_file(os.path.join(OUT, "glm-tiny", "tokenizer.json"))
    hf_nfkc = normalizers.NFKC()
    variants = {
        "nfkc": tokenizer_with(base, {"type": "NFKC"}),
        "nfkd-sequence": tokenizer_with(base, {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "Lowercase"}]}),
    }
    for name, tok in variants.items():
        with open(os.path.join(OUT, "variants", name + ".json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(json.loads(tok.to_str()), ensure_ascii=False, separators=(",", ":")))

    with open(os.path.join(OUT, "normalizer_encode_cases.jsonl"), "w", encoding="utf-8") as f:
        for name, tok in variants.items():
            for text in encode_texts(rng):
                case = {"tokenizer": name, "text": text, "ids": tok.encode(text, add_special_tokens=False).ids}
                f.write(json.dumps(case, ensure_ascii=False) + "\n")

    table = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000
             and unicodedata.normalize("NFKD", chr(cp)) != unicodedata.normalize("NFD", chr(cp))
             and hf_nfkc.normalize_str(chr(cp)) == unicodedata.normalize("NFKC", chr(cp))]
    texts = []
    for i in range(0, len(table), 3):
        # Three table characters with plain and combining neighbours, so composition across them is exercised.
        chunk = "".join(chr(cp) for cp in table[i:i + 3])
        texts.append(rng.choice(["", "a", "e", "ᄀ", " "]) + chunk + rng.choice(["", "\u0301", "\u0323\u0301", "\u3099", "x"]))
    while len(texts) < 3000:
        texts.append(random_text(rng))
    kept = skipped = 0
    with open(os.path.join(OUT, "normalization_cases.jsonl"), "w", encoding="utf-8") as f:
        for text in texts:
            expected = forms(text)
            if hf_nfkc.normalize_str(text) != expected["nfkc"]:
                skipped += 1
                continue
            # A form equal to the text itself is left out to keep the file small.
            case = {"text": text, **{form: value for form, value in expected.items() if value != text}}
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
            kept += 1
    print(f"normalization_cases.jsonl: {kept} strings ({skipped} where HF's NFKC differs from unicodedata left out)")


if __name__ == "__main__":
    main()
