"""Multilingual text for tokenizer fixtures and benchmarks (shared by make_tokenizer_fixtures.py and
bench_tokenizer.py). Deterministic for a given seed; no network. Code comes from the Python standard library
installed on the machine, natural language from the sentences below, and the rest is generated from
Unicode categories (every plane in use: CJK, Arabic, Devanagari, emoji with ZWJ, combining marks,
full-width digits, control characters, long whitespace and newline runs)."""

import glob
import os
import random
import sys
import unicodedata

SENTENCES = [
    "The quick brown fox jumps over the lazy dog. It's 4:30pm and we've got 1234567 reasons.",
    "I'd say they'll win, but she's sure he'd lose; we're 100% done, aren't we? DON'T SHOUT, I'M HERE.",
    "Größere Äpfel kosten 3,50 € pro Kilogramm – oder nicht? Straße, Fuß, Maß.",
    "L'élève a dû réviser ses leçons à l'école ; « Très bien ! » dit-il. Œuvre, cœur, naïve.",
    "¿Dónde está la biblioteca? ¡Mañana vamos al año nuevo con niños pequeños!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка 2024 года.",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο. Ω ω ς σ.",
    "مرحبا بالعالم! هذا نص عربي مع أرقام ٠١٢٣٤٥٦٧٨٩ وعلامات ترقيم؟ كَتَبَ الطَّالِبُ الدَّرْسَ.",
    "שלום עולם, זהו טקסט בעברית עם ניקוד: בְּרֵאשִׁית בָּרָא.",
    "नमस्ते दुनिया! यह हिन्दी पाठ है, जिसमें अंक १२३४५ और विराम चिह्न हैं। क्षत्रिय ज्ञान",
    "বাংলা ভাষা একটি সুন্দর ভাষা। তামিল: தமிழ் ஒரு அழகான மொழி. తెలుగు భాష",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ สวัสดีครับ ๑๒๓",
    "កាន់តែពិសេសអាចខលចេញ ភាសាខ្មែរ ລາວ",
    "人工智能正在改变世界。我们今天学习了三百六十五个汉字，还有“引号”和《书名号》！",
    "東京は日本の首都です。ひらがな、カタカナ、漢字を混ぜて書きます。ｶﾀｶﾅ半角も。",
    "안녕하세요, 세계! 한국어 문장에는 띄어쓰기가 있습니다. 가나다라마바사",
    "Tiếng Việt có dấu: Đường phố Hà Nội rất đông đúc vào giờ cao điểm.",
    "Türkçe: İstanbul'da ılık bir gün; Polski: Zażółć gęślą jaźń.",
    "ქართული ენა ძალიან ლამაზია. Հայերեն լեզու. አማርኛ ቋንቋ ነው።",
    "Emoji: 👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 ❤️‍🔥 🧑🏿‍💻 1️⃣ ©️ ™ 🦙.cpp",
    "Math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = ∫₀¹ f(t) dt ≈ 3.14159… ½ ¾ ⅞ Ⅻ ⑫",
    "Full-width: ＡＢＣ１２３４５６ ０９８７ and superscripts ¹²³ and ①②③.",
    "Combining: e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353 q\u0307\u0323 ﬁ ﬂ ẞ ß ſ K Å",
    "Apostrophes: 'S 'T 'RE 'VE 'M 'LL 'D 'ſ 's 't 're 've 'm 'll 'd don’t it‘s",
    "Mixed123abc ABC123 x86_64 v1.2.3-rc4 0x1F600 3.14e-10 1,000,000 12345678901234567890",
    "<think>reasoning</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>",
    "[gMASK]<sop><|system|>\nYou are helpful.<|user|>\nHi!<|assistant|>\n<think></think>\nHello!<|endoftext|>",
]

WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n \n", "\u00a0", "\u3000", "\u2003",
              "\u2028", "\u0085", "\x0b", "\x0c", "\x1c", "\x1f", "        ", "\n\n\n\n", " " * 17, "\t\t\n"]


def code_lines(limit_files=60):
    root = os.path.dirname(os.__file__)
    files = sorted(glob.glob(os.path.join(root, "*.py")))[:limit_files]
    lines = []
    for f in files:
        try:
            with open(f, encoding="utf-8") as h:
                lines.extend(h.read().splitlines(keepends=True))
        except (UnicodeDecodeError, OSError):
            pass
    return lines


def assigned_characters():
    """Characters assigned in Python's Unicode database (a version every engine involved knows),
    grouped by coarse class, from every plane in use."""
    pools = {"letter": [], "mark": [], "number": [], "punct": [], "symbol": [], "space": [], "control": [],
             "format": []}
    for cp in range(0x20, 0x32000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        cat = unicodedata.category(c)
        if cat == "Cn" or cat == "Co":
            continue
        key = {"L": "letter", "M": "mark", "N": "number", "P": "punct", "S": "symbol", "Z": "space",
               "C": "control"}[cat[0]]
        if cat == "Cf":
            key = "format"
        pools[key].append(c)
    pools["control"] += [chr(c) for c in range(0, 0x20)]
    pools["space"] += list("\t\n\r\x0b\x0c\x85")
    return pools


def random_unicode(rng, pools, n):
    keys = list(pools)
    weights = [8, 3, 3, 2, 2, 2, 1, 1]
    out = []
    for _ in range(n):
        pool = pools[rng.choices(keys, weights)[0]]
        out.append(rng.choice(pool))
    return "".join(out)


def make_text(rng, pools, code, added_tokens, pieces):
    """One test string: a mix of sentences, code, random characters, numbers, whitespace runs and
    (optionally) added-token texts."""
    parts = []
    for _ in range(pieces):
        kind = rng.random()
        if kind < 0.30:
            s = rng.choice(SENTENCES)
            a, b = sorted(rng.sample(range(len(s) + 1), 2))
            parts.append(s[a:b] if rng.random() < 0.5 else s)
        elif kind < 0.45:
            parts.append(rng.choice(code)[:200])
        elif kind < 0.60:
            parts.append(random_unicode(rng, pools, rng.randint(1, 12)))
        elif kind < 0.70:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 15))))
        elif kind < 0.82:
            parts.append("".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 4))))
        elif kind < 0.92 and added_tokens:
            t = rng.choice(added_tokens)
            # Sometimes a broken or glued variant, so near-misses are tested too.
            r = rng.random()
            if r < 0.15:
                t = t[:-1]
            elif r < 0.3:
                t = t + t
            parts.append(t)
        else:
            parts.append(rng.choice(["'s", "'LL", "'ve", "'ſ", " '", "''", "'", "’s", "don't", "I'M"]))
    return "".join(parts)


def corpus(seed, count, pieces=(1, 12), added_tokens=()):
    rng = random.Random(seed)
    pools = assigned_characters()
    code = code_lines()
    texts = []
    for _ in range(count):
        texts.append(make_text(rng, pools, code, list(added_tokens), rng.randint(*pieces)))
    return texts


def training_text():
    """Text to train the small BPE on: all sentences many times plus the standard library's code."""
    code = code_lines(120)
    return SENTENCES * 50 + ["".join(code[i:i + 40]) for i in range(0, len(code), 40)]


def large_text(megabytes, seed=7):
    """A long multilingual document for throughput measurements."""
    rng = random.Random(seed)
    pools = assigned_characters()
    code = code_lines(200)
    out, size = [], 0
    while size < megabytes * 1_000_000:
        r = rng.random()
        if r < 0.55:
            s = " ".join(rng.choice(SENTENCES[:25]) for _ in range(rng.randint(1, 6))) + "\n"
        elif r < 0.9:
            i = rng.randrange(len(code))
            s = "".join(code[i:i + rng.randint(5, 40)])
        else:
            s = random_unicode(rng, pools, rng.randint(5, 40)) + "\n\n"
        out.append(s)
        size += len(s.encode())
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(large_text(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
