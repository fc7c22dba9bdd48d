"""Fuzz-style robustness checks: hostile inputs must never kill the host process.

Each family runs a bounded, seeded batch of hostile inputs through the built library in ONE child process, so a
Swift trap (overflow, bad index, force unwrap) or a stack overflow shows as a signal exit code. Every call must
succeed or raise glm.GLMError / TypeError / ValueError. The driver prints "input N" before each input and
"ok COUNT" at the end; a failure names the family and the last input it started.

Families: (a) mutated/truncated tokenizer.json and GGUF vocabularies; (b) mutated config.json values, safetensors
headers and shard index of a copy of the glm47 fixture model; (c) random Jinja sources from hostile fragments
(integer edge cases, huge repeats, deep nesting, recursion); (d) random OpenAI chat requests on the tiny chat
model; (e) hostile token id lists for Tokenizer.decode / token_to_piece / is_special and Session.eval.

The library is build/lib/libglm.so unless $GLM_LIBRARY names another.
"""
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "Fixtures"

PRELUDE = r'''
import json, os, random, shutil, struct, sys
import glm
FIXTURES = sys.argv[1]
TMP = sys.argv[2]
EXPECTED = (glm.GLMError, TypeError, ValueError)
rng = random.Random(20240611)
count = 0

def attempt(index, fn):
    """Runs one hostile input; an expected exception is fine, anything else ends the run with exit 3."""
    global count
    print("input", index, flush=True)
    count += 1
    try:
        fn()
    except EXPECTED:
        pass
    except Exception as e:                      # a wrong exception type is a bug too, but not a crash
        print("unexpected exception at input %d: %r" % (index, e), flush=True)
        sys.exit(3)

INT_EDGES = [0, -1, 1, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, -2**63, 2**64,
             10**30, -10**30]
'''

TOKENIZER_DRIVER = r'''
import re
base_json = open(os.path.join(FIXTURES, "tokenizers/glm-tiny/tokenizer.json"), "rb").read()
base_gguf = open(os.path.join(FIXTURES, "tokenizers/ggml-vocab-gpt-2.gguf"), "rb").read()
numbers = [m.span() for m in re.finditer(rb"-?\d+(\.\d+)?", base_json)]
hostile_numbers = [b"-1", b"2147483647", b"2147483648", b"4294967296", b"9223372036854775808", b"1e308", b"-1e308",
                   b"1.5", b"NaN", b"Infinity", b"0", b"99999999999999999999999999", b'"7"', b"null", b"[]", b"{}"]
structural = [b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"\\u", b"\\ud800", b"\x00", b"\xff", b"\xc3"]

def use(tok):
    """Every call on a tokenizer that loaded; each may fail on its own (a hostile id) without skipping the rest."""
    n = tok.vocab_size
    calls = [lambda t=t: tok.encode(t, add_special_tokens=True) for t in
             ["Hello world 123", "<think>x</think>", "\u00e9\u4e2d\U0001F600 \t\n", " " * 300, "9" * 300, ""]]
    calls += [lambda ids=ids: tok.decode(ids, skip_special_tokens=True) for ids in
              ([0, 1, 2], [n - 1], [n], [-1], [2**31 - 1], list(range(max(0, n - 5), n)))]
    calls += [lambda i=i: (tok.token_to_piece(i), tok.is_special(i)) for i in (0, n - 1, n, -1, 2**31 - 1, -2**31)]
    calls += [lambda: tok.token_to_id("<|endoftext|>"), lambda: tok.token_to_id("")]
    for call in calls:
        try:
            call()
        except EXPECTED:
            pass

base_tree = json.loads(base_json)
REGEXES = ["(a+)+$", "(?:\\s*)*x", "a{99999999999}", "a{2147483648,}", "a{5,1}", "[", "(", ")", "(?<=a+)b", "\\p{Bogus}",
           "(?i)" * 1000, "(" * 5000 + ")" * 5000, "(?:" * 5000 + "x" + ")" * 5000, "[^]", "\\", "a**", "\\1",
           "[z-a]", "\\x{FFFFFFFFFF}", "\\u{110000}", "((((((((x*)*)*)*)*)*)*)*)*y", "\\p{L}{0,99999}", "", "|" * 10000,
           "[" + "\\p{L}" * 5000 + "]", "(?=(?=(?=(?=a))))a", "\\s+(?!\\S)" * 200, "[[:alpha:]]", "(?<!\\p{N}{1,3})x"]

def mutate_tree():
    tree = json.loads(json.dumps(base_tree))
    kind = rng.randrange(6)
    if kind == 0:
        tree["pre_tokenizer"]["pretokenizers"][0]["pattern"] = rng.choice([{"Regex": rng.choice(REGEXES)},
                                                                          {"String": rng.choice(REGEXES)}, {}, "x"])
    elif kind == 1:
        tree["normalizer"] = rng.choice([{"type": "NFC"}, {"type": "NFKD"}, {"type": "Lowercase"}, {"type": "Bogus"},
                                         {"type": "Replace", "pattern": {"Regex": rng.choice(REGEXES)}, "content": "x"},
                                         {"type": "Sequence", "normalizers": [{"type": "NFC"}] * 1000}, [], 5])
    elif kind == 2:
        token = rng.choice(tree["added_tokens"])
        token[rng.choice(["id", "content", "special", "lstrip", "single_word", "normalized"])] = rng.choice(
            [-1, 0, 4255, 4256, 4300, 2**31 - 1, 2**31, 2**63, "", "x" * 100000, None, True, 1.5, []])
    elif kind == 3:
        merges = tree["model"]["merges"]
        merges[rng.randrange(len(merges))] = rng.choice([["Ġ"], ["Ġ", "Ġ", "Ġ"], "", "a b c", "Ġ", [1, 2], ["", ""],
                                                         ["zz", "qq"], None])
    elif kind == 4:
        tree["model"][rng.choice(["byte_fallback", "ignore_merges", "unk_token", "dropout", "fuse_unk",
                                  "continuing_subword_prefix", "type", "vocab"])] = rng.choice(
            [True, "x", "<|endoftext|>", 1e308, -1, None, [], {"a": 2**40}, {"a": -1, "b": 0}, "WordPiece"])
    else:
        vocab = tree["model"]["vocab"]
        key = rng.choice(list(vocab))
        vocab[key] = rng.choice([-1, 2**31 - 1, 2**31, 10**20, 0, len(vocab), len(vocab) + 1000, 1.5, "3"])
    return json.dumps(tree, ensure_ascii=False).encode("utf-8", "surrogatepass")

def mutate_json(data):
    kind = rng.randrange(8)
    if kind >= 6:
        return mutate_tree()
    if kind == 0:
        return data[:rng.randrange(len(data))]
    if kind == 1:
        data = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind in (2, 3):      # kind 3: the numbers near the top (added_tokens ids)
        a, b = numbers[rng.randrange(len(numbers) if kind == 2 else min(200, len(numbers)))]
        return data[:a] + rng.choice(hostile_numbers) + data[b:]
    if kind == 4:
        at = rng.randrange(len(data))
        return data[:at] + rng.choice(structural) + data[at:]
    at = rng.randrange(len(data))
    depth = rng.choice([100, 1000, 100000])
    return data[:at] + rng.choice([b"[", b'{"a":']) * depth + data[at:]

GGUF_KEYS = [m.end() for key in (b"tokenizer.ggml.tokens", b"tokenizer.ggml.merges", b"tokenizer.ggml.token_type",
                                   b"tokenizer.ggml.model", b"tokenizer.ggml.eos_token_id", b"tokenizer.ggml.pre",
                                   b"general.architecture", b"tokenizer.ggml.bos_token_id")
             for m in re.finditer(re.escape(key), base_gguf)]
FIELD_VALUES = [0, 1, 0x7F, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**63 - 1, 2**63, 2**64 - 1, 12, 13, 9, 100]

def mutate_gguf(data):
    kind = rng.randrange(5)
    if kind == 0:
        return data[:rng.choice([rng.randrange(64), rng.randrange(4096), rng.randrange(len(data))])]
    data = bytearray(data)
    if kind == 1:       # the header: magic, version, tensor count, metadata count
        at = rng.choice([4, 8, 16])
    elif kind == 2:     # right after a metadata key: its type, array element type, count or string length
        at = rng.choice(GGUF_KEYS) + rng.choice([0, 4, 8])
    elif kind == 3:
        at = rng.randrange(len(data) - 8)
    else:
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    width = rng.choice([4, 8])
    value = rng.choice(FIELD_VALUES) & ((1 << (8 * width)) - 1)
    data[at:at + width] = value.to_bytes(width, "little")
    return bytes(data)

index = 0
for family, base, suffix, mutate, n in (("json", base_json, ".json", mutate_json, 160),
                                         ("gguf", base_gguf, ".gguf", mutate_gguf, 100)):
    for _ in range(n):
        path = os.path.join(TMP, "tok%d%s" % (index, suffix))
        with open(path, "wb") as f:
            f.write(mutate(base))
        def run(path=path):
            try:
                tok = glm.Tokenizer.from_file(path)
            finally:
                os.remove(path)
            use(tok)
        attempt(index, run)
        index += 1
print("ok", count)
'''

MODEL_DRIVER = r'''
src = os.path.join(FIXTURES, "models/glm47")
base_config = json.load(open(os.path.join(src, "config.json")))
base_index = json.load(open(os.path.join(src, "model.safetensors.index.json")))
shard_names = sorted(n for n in os.listdir(src) if n.startswith("model-"))
shards = {}
for name in shard_names:
    raw = open(os.path.join(src, name), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    shards[name] = (json.loads(raw[8:8 + n]), raw[8 + n:])

def deep(depth):
    v = 1
    for _ in range(depth):
        v = [v]
    return v

HOSTILE = INT_EDGES + [1e308, -1e308, float("nan"), float("inf"), 0.5, 1e-320, "64", None, True, False, [], {},
                       [1, 2], {"a": 1}, deep(50), "\ud800x"]
CONFIG_KEYS = list(base_config) + ["rope_parameters", "rope_scaling", "num_local_experts", "num_mtp_layers"]

def fresh_dir():
    d = os.path.join(TMP, "model")
    shutil.rmtree(d, ignore_errors=True)
    os.mkdir(d)
    for name in os.listdir(src):
        os.symlink(os.path.join(src, name), os.path.join(d, name))
    return d

def replace(d, name, data):
    os.remove(os.path.join(d, name))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))

def write_shard(d, name, header, body, length_override=None, cut=None):
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    data = struct.pack("<Q", len(blob) if length_override is None else length_override) + blob + body
    replace(d, name, data[:cut] if cut is not None else data)

def use(model):
    model.info()
    model.logits([0, 1, 2])
    s = model.session(8)
    s.eval([1, 2, 3])
    s.mtp_logits([4])

def config_case():
    config = json.loads(json.dumps(base_config))
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(CONFIG_KEYS)
        value = rng.choice(HOSTILE)
        if key in ("rope_parameters", "rope_scaling") and rng.random() < 0.7:
            value = {rng.choice(["rope_theta", "partial_rotary_factor", "rope_type", "type"]): rng.choice(HOSTILE)}
        config[key] = value
    d = fresh_dir()
    replace(d, "config.json", json.dumps(config, ensure_ascii=False) if rng.random() < 0.9
            else json.dumps(config)[:rng.randrange(40)])
    return d

def shard_case():
    d = fresh_dir()
    name = rng.choice(shard_names)
    header, body = shards[name]
    header = json.loads(json.dumps(header))
    kind = rng.randrange(7)
    if kind == 0:
        write_shard(d, name, header, body, length_override=rng.choice(INT_EDGES[:12]) % 2**64)
    elif kind == 1:
        write_shard(d, name, header, body, cut=rng.randrange(8 + len(json.dumps(header)) + len(body)))
    else:
        tensor = rng.choice([k for k in header if k != "__metadata__"])
        info = header[tensor]
        if kind == 2:
            a = rng.choice(INT_EDGES + [info["data_offsets"][1]])
            b = rng.choice(INT_EDGES + [info["data_offsets"][0], len(body), len(body) + 1])
            info["data_offsets"] = rng.choice([[a, b], [b, a], [a], [], a, [1.5, 2], ["0", "4"]])
        elif kind == 3:
            dims = [rng.choice(INT_EDGES + [1.0, "2"]) for _ in range(rng.randint(0, 4))]
            info["shape"] = rng.choice([dims, [2**32, 2**32], [2**62, 4], [-1] + info["shape"], 7])
        elif kind == 4:
            info["dtype"] = rng.choice(["F64", "I8", "I64", "BOOL", "F8_E4M3", "BF16", "F16", "", "f32", 3, None])
        elif kind == 5:
            header["__metadata__"] = rng.choice([{"format": 1}, [], "x", {"a": {"b": 1}}, None])
        else:
            header[rng.choice(["x", tensor + "x", ""])] = json.loads(json.dumps(info))
        write_shard(d, name, header, body)
    return d

def index_case():
    d = fresh_dir()
    index = json.loads(json.dumps(base_index))
    tensor = rng.choice(list(index["weight_map"]))
    index["weight_map"][tensor] = rng.choice(["../config.json", "/etc/passwd", "missing.safetensors", "", 5, None,
                                              "model-00001-of-00002.safetensors/.."])
    if rng.random() < 0.2:
        index = rng.choice([{"weight_map": []}, [], {"weight_map": {"x": "y"}}, {}])
    replace(d, "model.safetensors.index.json", json.dumps(index))
    return d

index = 0
for make, n in ((config_case, 110), (shard_case, 90), (index_case, 20)):
    for _ in range(n):
        d = make()
        attempt(index, lambda d=d: use(glm.Model(d, threads=1)))
        index += 1
print("ok", count)
'''

TEMPLATE_DRIVER = r'''
MIN = "(-9223372036854775807 - 1)"
FRAGMENTS = [
    "{{ 9223372036854775807 + 1 }}", "{{ %s - 1 }}" % MIN, "{{ 9223372036854775807 * 2 }}", "{{ -%s }}" % MIN,
    "{{ %s // -1 }}" % MIN, "{{ %s %% -1 }}" % MIN, "{{ %s | abs }}" % MIN, "{{ 5 // 0 }}", "{{ 5 % 0 }}",
    "{{ 5.0 / 0 }}", "{{ 2 ** 64 }}", "{{ 2 ** -1 }}", "{{ 10 ** 10 ** 10 }}", "{{ 99999999999999999999999 }}",
    "{{ 1e308 * 10 }}", "{{ (1e308 * 10) | int }}", "{{ 1e300 | int }}", "{{ 'nan' | float | int }}",
    "{{ 'inf' | float | int }}", "{{ -1e19 | int }}", "{{ 1e19 | round | int }}", "{{ 1.5 | round(9223372036854775807) }}",
    "{{ 1.5 | round(%s) }}" % MIN, "{{ 'a' * 9223372036854775807 }}", "{{ [1] * 9223372036854775807 }}",
    "{{ 'ab' * -3 }}", "{{ 'abc'[9223372036854775807:] }}", "{{ 'abc'[%s:] }}" % MIN, "{{ 'abc'[%s] }}" % MIN,
    "{{ 'abc'[::0] }}", "{{ 'abc'[::%s] }}" % MIN, "{{ [1,2][9223372036854775807] }}", "{{ [1,2][-3] }}",
    "{{ range(%s, 9223372036854775807) | length }}" % MIN, "{{ range(0, 10, 0) | list }}",
    "{{ range(9223372036854775807) | list | length }}", "{{ range(0, 9223372036854775807, 4611686018427387904) | list }}",
    "{% for i in range(100000000) %}x{% endfor %}", "{{ 'x' | indent(-5) }}", "{{ 'x' | indent(9223372036854775807) }}",
    "{{ 'x' | center(9223372036854775807) }}", "{{ 'x' | truncate(-1) }}", "{{ 'x y' | wordwrap(0) }}",
    "{{ [1,2,3] | batch(0) | list }}", "{{ [1,2,3] | slice(0) | list }}", "{{ [1,2,3] | batch(%s) | list }}" % MIN,
    "{{ '%*d' % (9999999999, 1) }}", "{{ '%.9999999999f' % 1.0 }}", "{{ '%c' % 9999999999 }}", "{{ '%c' % -1 }}",
    "{{ '%d' % 1e308 }}", "{{ '%%x' %% %s }}" % MIN, "{{ '{:>9999999999}'.format(1) }}", "{{ '{0:c}'.format(1114112) }}",
    "{{ '{:,}'.format(%s) }}" % MIN, "{{ '{:.99999999999f}'.format(1.5) }}", "{{ '{99999999999999999999}'.format(1) }}",
    "{{ 'ab'.split('') }}", "{{ 'x'.center(-1) }}", "{{ 'x'.ljust(9223372036854775807) }}",
    "{{ 'x'.zfill(9223372036854775807) }}", "{{ 'abc'.replace('', 'x', -1) }}", "{{ 'abc'.split('b', %s) }}" % MIN,
    "{{ 'abc'.find('b', 9223372036854775807) }}", "{{ 'abc'.startswith('a', %s) }}" % MIN,
    "{{ 'a\u0000b' | tojson(indent=9223372036854775807) }}", "{{ {'a': 1} | tojson(indent=-9223372036854775807) }}",
    "{{ messages | tojson(indent=99999999999) }}", "{{ (1e308 * 10) | tojson }}", "{{ 'x' | list | sum }}",
    "{{ [%s, -1] | sum }}" % MIN, "{{ [9223372036854775807, 1] | sum }}", "{{ [] | first }}", "{{ [] | max }}",
    "{{ [[1], 'a', {}] | sort }}", "{{ x.y.z() }}", "{{ messages[0]['content'][9223372036854775807] }}",
    "{{ messages | map(attribute='role') | join(', ') }}", "{{ cycler(1,2).next() }}", "{{ loop.index }}",
    "{{ namespace(a=1).b }}", "{% set ns = namespace(a=1) %}{% set ns.a = ns.a * 9223372036854775807 %}{{ ns.a }}",
    "{{ raise_exception('boom') }}", "{{ strftime_now('%Y' * 100000) }}", "{{ 1 is divisibleby 0 }}",
    "{{ 5 is divisibleby(0) }}", "{{ %s is divisibleby(-1) }}" % MIN, "{{ 'a' | default(x, 9223372036854775807) }}",
    "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(1) }}",
    "{% macro m(n) %}{% for i in range(10) %}{{ m(n) }}{% endfor %}{% endmacro %}{{ m(0) }}",
    "{% set x = [] %}{% for i in range(1000000) %}{% set _ = x.append(x) %}{% endfor %}{{ x | length }}",
    "{% set d = {} %}{% set _ = d.update({'a': d}) %}{{ d | tojson }}", "{% set l = [1] %}{% set _ = l.append(l) %}{{ l }}",
    "{{ " + "(" * 100000 + "1" + ")" * 100000 + " }}", "{{ " + "[" * 100000 + " }}", "{{ " + "-" * 100000 + "1 }}",
    "{{ " + "not " * 100000 + "1 }}", "{{ 1" + " + 1" * 100000 + " }}", "{{ x" + ".a" * 100000 + " }}",
    "{{ x" + "|e" * 100000 + " }}", "{% if true %}" * 5000 + "x" + "{% endif %}" * 5000, "{% if true %}" * 5000,
    "{% for a in b %}" * 3000, "{{ '" + "\\u" * 1000 + "' }}", "{{ '\\U99999999' }}", "{{ '\\x' }}",
    "{{ '\\N{NOT A NAME}' }}", "{%- raw -%}", "{{", "{%", "{#", "{{ }}", "{% %}", "{% endfor %}", "{% else %}",
    "{{ 1 if }}", "{{ a[ }}", "{{ {1: } }}", "{{ lambda }}", "{% set %}", "{% macro %}", "{% call %}{% endcall %}",
    "{% filter upper %}x{% endfilter %}", "{% include 'x' %}", "{% extends 'x' %}", "{% import 'x' as y %}",
    "\x00\xff\ud800", "{{ '\ud800' }}", "{{ '{-1}'.format(1) }}", "{{ '{0[%s]}'.format([1]) }}" % MIN,
    "{{ '{0[-1]}'.format([1]) }}", "{{ '%.*s' % (-1, 'abc') }}", "{{ '%.*d' % (99999999999, 1) }}",
    "{{ '%%*d' %% (%s, 1) }}" % MIN, "{{ '%*f' % (99999999999, 1.0) }}", "{{ '%.*f' % (99999999999, 1.0) }}",
    "{{ 'x' | center(%s) }}" % MIN, "{{ 'abc'.rjust(%s) }}" % MIN, "{{ 'x' | truncate(9223372036854775807) }}",
    "{{ 'x' * %s }}" % MIN, "{{ [1,2,3][%s:%s:-1] }}" % (MIN, MIN), "{{ range(10)[::%s] | list }}" % MIN,
    "{{ 'a,b'.split(',', 9223372036854775807) }}", "{{ 'abc'.count('', %s) }}" % MIN, "{{ [1,2,3] | slice(%s) | list }}" % MIN,
    "{{ 'a\tb\t'.expandtabs(9223372036854775807) }}", "{{ '\t'.expandtabs(4611686018427387904) }}",
    "{{ 'abc' | truncate(%s) }}" % MIN, "{{ 'abc' | truncate(%s, true, 'x', 9223372036854775807) }}" % MIN,
    "{{ 'abc'.zfill(%s) }}" % MIN, "{{ 'abc'.ljust(%s) }}" % MIN, "{{ 'x' | int(base=%s) }}" % MIN,
    "{{ 1.5 | round(%s, 'floor') }}" % MIN, "{{ 'x' | indent(%s) }}" % MIN, "{{ 'x' | batch(9223372036854775807) | list }}",
]

def nest(src):
    wrappers = ["{%% if true %%}%s{%% endif %%}", "{%% for m in messages %%}%s{%% endfor %%}",
                "{%% macro w() %%}%s{%% endmacro %%}{{ w() }}", "{%% set y %%}%s{%% endset %%}{{ y }}",
                "{%% for i in range(3) %%}{{ loop.index }}%s{%% endfor %%}"]
    for _ in range(rng.randint(0, 3)):
        src = rng.choice(wrappers) % src
    return src

messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "reasoning_content": "r"}]
hostile_messages = [messages, messages, messages, [], [{"role": "user", "content": [{"type": "text", "text": "a"}] * 3}],
                    [{"role": 5, "content": None}], [{"content": {"a": [1, {"b": 2}]}}]]

index = 0
sources = list(FRAGMENTS)
for _ in range(180):
    sources.append(nest("".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 4)))))
for _ in range(40):            # random cuts of the official template
    glm_template = os.path.join(FIXTURES, "models/glm-tiny-chat/chat_template.jinja")
    text = open(glm_template, encoding="utf-8").read()
    a = rng.randrange(len(text))
    sources.append(text[:a] + rng.choice(["", "{{", "{%", "%}", "}}", "{% endif %}", "'"]) + text[a + rng.randrange(20):])
for src in sources:
    msgs = rng.choice(hostile_messages)
    attempt(index, lambda: glm.render_chat(msgs, [{"type": "function", "function": {"name": "f"}}],
                                           template=src, x={"y": {"z": 1}}, enable_thinking=rng.random() < 0.5))
    index += 1
for _ in range(30):            # the official template with hostile messages and variables
    msgs = [{"role": rng.choice(["user", "assistant", "tool", "system", "x"]),
             rng.choice(["content", "reasoning_content", "tool_calls"]): rng.choice(
                 [None, 1, "x", [], {}, [{"function": {"name": 1, "arguments": "{"}}], [{"type": "image"}], 1e308])}
            for _ in range(rng.randint(0, 4))]
    attempt(index, lambda: glm.render_chat(msgs, rng.choice([None, [], [1], [{"function": None}], "x"]),
                                           clear_thinking=rng.choice([None, 1, "x"])))
    index += 1
print("ok", count)
'''

CHAT_DRIVER = r'''
model = glm.Model(os.path.join(FIXTURES, "models/glm-tiny-chat"), threads=1)
session = model.session(256, threads=1)
NUMBERS = INT_EDGES + [1e308, -1e308, 1e-308, 0.5, -0.0, float("nan"), float("inf"), -float("inf"), 2.0]
GARBAGE = [None, True, "x", "", [], {}, [1, "a"], {"a": {"b": [None]}}, "\ud800"]
OPTIONS = ["max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "n",
           "repetition_penalty", "presence_penalty", "frequency_penalty", "logit_bias", "stop", "tool_choice",
           "chat_template_kwargs", "stream_options", "model", "response_format", "user"]
BIAS_KEYS = ["0", "5", "-1", "511", "512", "2147483647", "9223372036854775808", "99999999999999999999", "1e5",
             " 5", "+5", "0x10", "", "\u0665"]

def value_for(key):
    r = rng.random()
    if key == "logit_bias" and r < 0.7:
        return {rng.choice(BIAS_KEYS): rng.choice(NUMBERS + GARBAGE) for _ in range(rng.randint(1, 3))}
    if key == "stop" and r < 0.5:
        return [rng.choice(["", "a", "\n", "<think>", "\ud800"]) for _ in range(rng.randint(0, 5))]
    if key == "chat_template_kwargs" and r < 0.6:
        return {rng.choice(["enable_thinking", "clear_thinking", "tools", "messages"]): rng.choice(NUMBERS + GARBAGE)}
    return rng.choice(NUMBERS) if r < 0.85 else rng.choice(GARBAGE)

def messages_case():
    if rng.random() < 0.8:
        return [{"role": "user", "content": "What's the weather in Paris?"}]
    return rng.choice([[], "hi", [None], [{"role": "user"}], [{"role": "user", "content": [{"type": "text"}]}],
                       [{"role": "tool", "content": [{"type": "text", "text": 5}]}],
                       [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}],
                       [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}],
                       [{"role": "assistant", "tool_calls": "x"}], [{"role": "user", "content": "x" * 5000}]])

WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
HOSTILE_TOOLS = [[], [{"function": 5}], [{"type": "x"}], "x",
                 [{"type": "function", "function": {"name": "f", "parameters": {"properties": {"a": {"type": [[]]}}}}}]]

for index in range(300):
    options = {}
    for _ in range(rng.randint(0, 2)):
        key = rng.choice(OPTIONS)
        options[key] = value_for(key)
    if "max_tokens" not in options and "max_completion_tokens" not in options:
        options["max_tokens"] = rng.randint(1, 4)
    stream = rng.random() < 0.3
    msgs = messages_case()
    tools = rng.choice([None, WEATHER, WEATHER] + HOSTILE_TOOLS) if rng.random() < 0.3 else WEATHER
    def run():
        result = session.chat(msgs, tools=tools, stream=stream, **options)
        if stream:
            for _ in result:
                pass
    attempt(index, run)
print("ok", count)
'''

IDS_DRIVER = r'''
tok_paths = [os.path.join(FIXTURES, "tokenizers/glm-tiny/tokenizer.json"),
             os.path.join(FIXTURES, "tokenizers/ggml-vocab-gpt-2.gguf")]
tokenizers = [glm.Tokenizer.from_file(p) for p in tok_paths]
model = glm.Model(os.path.join(FIXTURES, "models/glm47"), threads=1)
vocab = model.vocab_size

def ids_case(n):
    edges = [0, n - 1, n, n + 1, -1, -2, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**63, 10**30]
    return [rng.choice(edges) if rng.random() < 0.3 else rng.randrange(max(n, 1)) for _ in range(rng.randint(0, 12))]

index = 0
for _ in range(150):
    tok = rng.choice(tokenizers)
    ids = ids_case(tok.vocab_size)
    skip = rng.random() < 0.5
    attempt(index, lambda: tok.decode(ids, skip_special_tokens=skip))
    index += 1
    i = rng.choice(ids) if ids else -1
    if -2**31 <= i < 2**31:
        attempt(index, lambda: (tok.token_to_piece(i), tok.is_special(i)))
    index += 1
session = model.session(32, threads=1)
for _ in range(60):
    ids = ids_case(vocab)
    def run():
        action = rng.randrange(4)
        if action == 0:
            session.eval(ids, all_logits=rng.random() < 0.5)
        elif action == 1:
            session.mtp_logits(ids)
        elif action == 2:
            session.truncate(rng.choice([0, 1, 31, 32, 33, 2**31 - 1, 2**63 - 1]))
        else:
            model.logits(ids)
    attempt(index, run)
    index += 1
print("ok", count)
'''

FAMILIES = {
    "tokenizer_files": TOKENIZER_DRIVER,
    "model_files": MODEL_DRIVER,
    "templates": TEMPLATE_DRIVER,
    "chat_requests": CHAT_DRIVER,
    "token_ids": IDS_DRIVER,
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_hostile_inputs_never_crash(family, tmp_path):
    driver = tmp_path / ("fuzz_%s.py" % family)
    driver.write_text(PRELUDE + textwrap.dedent(FAMILIES[family]))
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python"))
    try:
        proc = subprocess.run([sys.executable, str(driver), str(FIXTURES), str(work)], env=env, capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        last = [line for line in out.splitlines() if line.startswith("input ")]
        pytest.fail("%s: timed out after 120 s at %s" % (family, last[-1] if last else "start"))
    lines = proc.stdout.splitlines()
    started = [line for line in lines if line.startswith("input ")]
    where = started[-1] if started else "before the first input"
    assert proc.returncode == 0, "%s: driver exited with %d at %s\n%s\n%s" % (
        family, proc.returncode, where, "\n".join(lines[-3:]), proc.stderr[-3000:])
    assert lines and lines[-1].startswith("ok "), "%s: no final 'ok' line\n%s" % (family, proc.stdout[-2000:])
    assert int(lines[-1].split()[1]) == len(started)
