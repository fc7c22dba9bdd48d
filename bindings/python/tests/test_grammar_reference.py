"""Masks against a brute-force reference, exhaustively on a small vocabulary (issue 13, item 5).

The vocabulary (~300 ids, written out here as a byte-level BPE tokenizer.json) has single characters, words,
JSON punctuation runs that reach past the end of a value ('"}', '}\\n', '1,'), multi-byte characters, and byte
tokens that split UTF-8 characters (lone lead and continuation bytes, a continuation byte glued to a quote).

The reference is independent of libglm: each constraint's language is written by hand as a byte-level regular
expression built from the combinators below (JSON by RFC 8259 and the output forms glm.h documents; UTF-8 by the
Unicode standard's table of well-formed byte sequences), run as a Thompson NFA whose state sets are cached as a
DFA. At every step of many random walks, every id is checked: it is allowed iff the text so far plus its bytes
is a prefix of some member of the language, and the end id iff the text is a member. Each finished JSON walk is
also validated with jsonschema, so the hand-written languages are checked against the schemas too."""
import json
import random

import jsonschema
import pytest

import glm
import json_spellings

# ---- a byte-level NFA (Thompson construction) ----


class NFA:
    def __init__(self):
        self.eps = []    # state -> [state]
        self.edges = []  # state -> [(frozenset of bytes, state)]

    def state(self):
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1


class Lang:
    """A regular language over bytes; build(nfa, start) returns the end state of a fragment from `start`."""

    def __add__(self, other):
        return Seq(self, lit(other) if isinstance(other, (str, bytes)) else other)

    def __radd__(self, other):
        return Seq(lit(other), self)

    def __or__(self, other):
        return Alt(self, lit(other) if isinstance(other, (str, bytes)) else other)


class Bytes(Lang):
    def __init__(self, allowed):
        self.allowed = frozenset(allowed)

    def build(self, nfa, start):
        end = nfa.state()
        nfa.edges[start].append((self.allowed, end))
        return end


class Seq(Lang):
    def __init__(self, *parts):
        self.parts = [lit(p) if isinstance(p, (str, bytes)) else p for p in parts]

    def build(self, nfa, start):
        for p in self.parts:
            start = p.build(nfa, start)
        return start


class Alt(Lang):
    def __init__(self, *parts):
        self.parts = [lit(p) if isinstance(p, (str, bytes)) else p for p in parts]

    def build(self, nfa, start):
        end = nfa.state()
        for p in self.parts:
            s = nfa.state()
            nfa.eps[start].append(s)
            nfa.eps[p.build(nfa, s)].append(end)
        return end


class Rep(Lang):
    """lo..hi repetitions (hi None: unbounded)."""

    def __init__(self, part, lo=0, hi=None):
        self.part = lit(part) if isinstance(part, (str, bytes)) else part
        self.lo, self.hi = lo, hi

    def build(self, nfa, start):
        for _ in range(self.lo):
            start = self.part.build(nfa, start)
        end = nfa.state()
        nfa.eps[start].append(end)
        if self.hi is None:
            loop = nfa.state()
            nfa.eps[start].append(loop)
            back = self.part.build(nfa, loop)
            nfa.eps[back].append(loop)
            nfa.eps[back].append(end)
        else:
            for _ in range(self.hi - self.lo):
                start = self.part.build(nfa, start)
                nfa.eps[start].append(end)
        return end


EMPTY = Seq()


def lit(text):
    data = text.encode() if isinstance(text, str) else text
    return Seq(*[Bytes([b]) for b in data])


def opt(x):
    return Rep(x, 0, 1)


def byte_range(lo, hi):
    return Bytes(range(lo, hi + 1))


def chars(s):
    return Bytes(s.encode())


CONT = byte_range(0x80, 0xBF)


def utf8_char(ascii_allowed):
    """One well-formed UTF-8 character (Unicode 15, table 3-7): an allowed ASCII byte or any non-ASCII scalar."""
    return Alt(Bytes(ascii_allowed),
               Seq(byte_range(0xC2, 0xDF), CONT),
               Seq(Bytes([0xE0]), byte_range(0xA0, 0xBF), CONT),
               Seq(Bytes(list(range(0xE1, 0xED)) + [0xEE, 0xEF]), CONT, CONT),
               Seq(Bytes([0xED]), byte_range(0x80, 0x9F), CONT),
               Seq(Bytes([0xF0]), byte_range(0x90, 0xBF), CONT, CONT),
               Seq(byte_range(0xF1, 0xF3), CONT, CONT, CONT),
               Seq(Bytes([0xF4]), byte_range(0x80, 0x8F), CONT, CONT))


class Reference:
    """The NFA of a language, simulated on state sets that are interned as DFA states as they are met."""

    def __init__(self, lang):
        self.nfa = NFA()
        start = self.nfa.state()
        self.accept = lang.build(self.nfa, start)
        # Live states: those from which the accepting state is reachable.
        back = [[] for _ in self.nfa.eps]
        for s, targets in enumerate(self.nfa.eps):
            for t in targets:
                back[t].append(s)
        for s, edges in enumerate(self.nfa.edges):
            for _, t in edges:
                back[t].append(s)
        live, todo = {self.accept}, [self.accept]
        while todo:
            for p in back[todo.pop()]:
                if p not in live:
                    live.add(p)
                    todo.append(p)
        self.live = live
        self.sets, self.ids, self.moves = [], {}, {}
        self.start = self.intern({start})

    def intern(self, states):
        todo, seen = list(states), set(states)
        while todo:
            for t in self.nfa.eps[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        key = frozenset(s for s in seen if s in self.live)
        if key not in self.ids:
            self.ids[key] = len(self.sets)
            self.sets.append(key)
        return self.ids[key]

    def step(self, d, byte):
        """The DFA state after `byte`, None when no member continues so."""
        k = (d, byte)
        if k not in self.moves:
            nxt = {t for s in self.sets[d] for allowed, t in self.nfa.edges[s] if byte in allowed}
            self.moves[k] = self.intern(nxt) if nxt else None
        d2 = self.moves[k]
        return d2 if d2 is None or self.sets[d2] else None

    def run(self, d, data):
        for b in data:
            d = self.step(d, b)
            if d is None:
                return None
        return d

    def is_member(self, d):
        return self.accept in self.sets[d]


# ---- JSON, as the languages libglm documents (glm.h): canonical numbers, any escape, bounded whitespace ----

WS = chars(" \t\n\r")
HEX = chars("0123456789abcdefABCDEF")
RAW = utf8_char([b for b in range(0x20, 0x80) if b not in b'"\\'])


def u_escape_bmp():
    """\\uXXXX of a character of the Basic Multilingual Plane: any four hex digits but D800-DFFF."""
    not_d = chars("0123456789abcefABCEF")
    return Seq("\\u", Alt(Seq(not_d, HEX), Seq(chars("dD"), chars("01234567"))), HEX, HEX)


JSON_CHAR = Alt(RAW, Seq("\\", chars('"\\/bfnrt')), u_escape_bmp())


def json_string(value=None, lo=0, hi=None, char=JSON_CHAR):
    if value is not None:
        return Seq('"', *[Alt(*json_spellings.char_spellings(c)) for c in value], '"')
    return Seq('"', Rep(char, lo, hi), '"')


def gap(n):
    return Rep(WS, 0, n)


def tokens(n, *parts):
    """JSON tokens with up to n whitespace characters before each."""
    out = []
    for p in parts:
        out += [gap(n), p]
    return Seq(*out)


def integers(lo, hi):
    return Alt(*[str(i) for i in range(lo, hi + 1)])


DIGITS = Rep(byte_range(0x30, 0x39), 1)
NONZERO_INT = Seq(byte_range(0x31, 0x39), Rep(byte_range(0x30, 0x39)))
# glm.h: integers are "0" or -?[1-9][0-9]* (never "-0"); other numbers may add a fraction and/or an exponent of
# one or two digits when the integer part has at most 16 digits.
ANY_INT = Alt("0", Seq(opt("-"), NONZERO_INT))
SHORT_INT = Alt("0", Seq(byte_range(0x31, 0x39), Rep(byte_range(0x30, 0x39), 0, 15)))
FRACTION = Seq(".", DIGITS)
EXPONENT = Seq(chars("eE"), opt(chars("+-")), Rep(byte_range(0x30, 0x39), 1, 2))
ANY_NUMBER = Seq(opt("-"), Alt(Alt("0", NONZERO_INT),
                               Seq(SHORT_INT, Alt(FRACTION, EXPONENT, Seq(FRACTION, EXPONENT)))))


def document(n, value):
    """A whole output: the value, then up to n whitespace characters."""
    return Seq(value, gap(n))


def json_object(n, members, optional_after=()):
    """{ members in order (required ones), then the optional members in order, each possibly absent }.
    `members`: [(key, value lang, required)]; keys in the schema's order, as glm.h documents."""
    # Enumerate which members are present: a member list is a sequence of present ones, separated by commas.
    alts = []
    count = len(members)
    for mask in range(1 << count):
        present = [m for i, m in enumerate(members) if mask >> i & 1]
        if any(req and not (mask >> i & 1) for i, (_, _, req) in enumerate(members)):
            continue
        parts = [gap(n), "{"]
        for j, (key, value, _) in enumerate(present):
            if j:
                parts += [gap(n), ","]
            parts += [gap(n), json_string(key), gap(n), ":", value]
        parts += [gap(n), "}"]
        alts.append(Seq(*parts))
    return Alt(*alts)


def json_array(n, item, lo, hi):
    if hi == 0:
        return tokens(n, "[", "]")
    body = Seq(item, Rep(Seq(gap(n), ",", item), max(lo - 1, 0), hi - 1 if hi is not None else None))
    return Seq(gap(n), "[", body if lo > 0 else opt(body), gap(n), "]")


def g(n, lang):
    """A value preceded by whitespace."""
    return Seq(gap(n), lang)


# ---- the vocabulary ----


def byte_level_alphabet():
    """GPT-2's byte-to-character table, as byte-level BPE vocabularies write bytes."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def vocabulary_pieces():
    pieces = [bytes([b]) for b in range(0x20, 0x7F)] + [b"\t", b"\n", b"\r"]
    words = ["true", "false", "null", "nu", "ll", "tr", "ue", "fa", "lse", "name", "age", "tags", "id", "kind",
             "note", "ab", "ba", "abc", "ca", "cc", "a0", "x1", "\\u", "\\u00", "\\n", "\\\"", "\\\\", "00", "e9",
             "E9", "61", "6b", "d8", "D8", "dc", "00e", "12", "10", "20", "-1", "-0", "0.", ".5", "e+", "E-", "1e",
             "123", "999", "{\"", "\":", "\",", "\"}", "\"]", "\":\"", "\": ", "[\"", "[{", "}]", "},", "}\n", "]\n",
             "}\n\n", "  ", "   ", " \n", "\n ", "\t\t", ",\n", ", ", ": ", "1,", "2]", "0}", "[]", "{}", "\"\"",
             "é", "é\"", "aé", "é1", "€", "😀", "ab\"", "\"a\"", "\"é\"", "<think>", "</tool_call>", "<tool_call>",
             "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>", "</arg_", "value>", "f<arg_key>"]
    pieces += [w.encode() for w in words]
    # Bytes that split characters: lead bytes, continuations, a continuation glued to a quote or a letter.
    pieces += [b"\xc3", b"\xa9", b"\xe2", b"\x82", b"\xac", b"\xf0", b"\x9f", b"\x98", b"\x80", b"\xa9\"",
               b"\xac\"", b"\x82\xac", b"\xf0\x9f", b"\x98\x80", b"a\xc3", b"\xed", b"\xa0", b"\xc0", b"\xff"]
    rng = random.Random(13)
    alphabet = "abcxyz019-.,:{}[]\" é"
    while len(pieces) < 300:
        w = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 3))).encode()
        if w not in pieces:
            pieces.append(w)
    return pieces


SPECIAL = ["<|x|>", "<|endoftext|>"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    pieces = vocabulary_pieces()
    assert len(set(pieces)) == len(pieces)
    table = byte_level_alphabet()
    vocab = {"".join(table[b] for b in p): i for i, p in enumerate(pieces)}
    added = [{"id": len(pieces) + k, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for k, s in enumerate(SPECIAL)]
    for a in added:
        vocab[a["content"]] = a["id"]
    spec = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": vocab, "merges": []}}
    folder = tmp_path_factory.mktemp("small-vocab")
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    tokenizer = glm.Tokenizer.from_file(folder / "tokenizer.json")
    assert tokenizer.vocab_size == len(pieces) + len(SPECIAL)
    texts = [None if tokenizer.is_special(i) else tokenizer.token_to_piece(i) for i in range(tokenizer.vocab_size)]
    assert texts[:len(pieces)] == pieces  # the tokenizer reads the bytes back as written
    end = tokenizer.token_to_id("<|endoftext|>")
    return tokenizer, texts, end


def expected_mask(ref, d, texts, end):
    out = {i for i, p in enumerate(texts) if p and ref.run(d, p) is not None}
    if ref.is_member(d):
        out.add(end)
    return out


def compare(grammar, ref, texts, end, walks, seed, check=None, limit=60):
    """Random walks through the reference; the engine's mask must equal the reference's at every step."""
    rng = random.Random(seed)
    steps = ended = 0
    for _ in range(walks):
        matcher, d, text = grammar.matcher(), ref.start, b""
        for step in range(limit):
            expected = expected_mask(ref, d, texts, end)
            actual = set(matcher.allowed_tokens())
            assert actual == expected, "after %r: extra %r, missing %r" % (
                text, sorted(texts[i] or b"<end>" for i in actual - expected)[:12],
                sorted(texts[i] or b"<end>" for i in expected - actual)[:12])
            steps += 1
            assert expected, "the reference has no continuation after %r" % text
            choices = sorted(expected)
            if step > limit // 2 and end in expected:
                choices = [end]
            token = rng.choice(choices)
            matcher.accept(token)
            if token == end:
                assert matcher.ended
                ended += 1
                if check:
                    check(text)
                break
            text += texts[token]
            d = ref.run(d, texts[token])
    return steps, ended


def validator(schema):
    v = jsonschema.Draft202012Validator(schema)
    return lambda text: v.validate(json.loads(text.decode()))


# (schema, reference for max_whitespace n)
JSON_CASES = [
    ({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 3},
        "age": {"type": "integer", "minimum": -2, "maximum": 12},
        "tags": {"type": "array", "items": {"enum": ["a", "é", "x\"y"]}, "maxItems": 2}},
      "required": ["name"], "additionalProperties": False},
     lambda n: document(n, json_object(n, [
         ("name", g(n, json_string(lo=0, hi=3)), True),
         ("age", g(n, integers(-2, 12)), False),
         ("tags", json_array(n, g(n, Alt(json_string("a"), json_string("é"), json_string("x\"y"))), 0, 2),
          False)]))),
    # An optional property before a required one; a nullable bounded string; a boolean.
    ({"type": "object", "properties": {
        "kind": {"type": ["string", "null"], "minLength": 1, "maxLength": 2},
        "id": {"type": "integer", "minimum": 0, "maximum": 3},
        "ok": {"type": "boolean"}},
      "required": ["id"], "additionalProperties": False},
     lambda n: document(n, json_object(n, [
         ("kind", g(n, Alt(json_string(lo=1, hi=2), "null")), False),
         ("id", g(n, integers(0, 3)), True),
         ("ok", g(n, Alt("true", "false")), False)]))),
    # anyOf of a const object, a string enum with multi-byte characters, and an array of integers.
    ({"anyOf": [{"const": {"k": [True, None]}}, {"enum": ["€", "😀é", "ab"]},
                {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}]},
     lambda n: document(n, Alt(
         Seq(gap(n), "{", gap(n), json_string("k"), gap(n), ":", gap(n), "[", gap(n), "true", gap(n), ",",
             gap(n), "null", gap(n), "]", gap(n), "}"),
         g(n, Alt(json_string("€"), json_string("😀é"), json_string("ab"))),
         json_array(n, g(n, ANY_INT), 1, 3)))),
    # Numbers of any form, and a key that needs escaping.
    ({"type": "object", "properties": {"a\"/é": {"type": "array", "items": {"type": "number"}, "maxItems": 3}},
      "required": ["a\"/é"], "additionalProperties": False},
     lambda n: document(n, json_object(n, [("a\"/é", json_array(n, g(n, ANY_NUMBER), 0, 3), True)]))),
    # A bare string of 2..4 characters (escapes count as one).
    ({"type": "string", "minLength": 2, "maxLength": 4},
     lambda n: document(n, g(n, json_string(lo=2, hi=4)))),
]


@pytest.mark.parametrize("whitespace", [0, 2])
@pytest.mark.parametrize("case", range(len(JSON_CASES)))
def test_json_schema_masks_equal_the_reference(small, case, whitespace):
    tokenizer, texts, end = small
    schema, language = JSON_CASES[case]
    ref = Reference(language(whitespace))
    grammar = glm.Grammar.json_schema(tokenizer, schema, strict=True, max_whitespace=whitespace,
                                      end_token_ids=[end])
    steps, ended = compare(grammar, ref, texts, end, walks=25, seed=case * 10 + whitespace,
                           check=validator(schema))
    assert steps >= 100 and ended >= 10, (steps, ended)


DIGIT = byte_range(0x30, 0x39)
REGEX_CASES = [
    ("(ab|a[0-9é]){1,3}c?", Seq(Rep(Alt("ab", Seq("a", Alt(DIGIT, "é"))), 1, 3), opt("c"))),
    # A negated class: every character but a, b, c (newline included, as in ECMA-262 and Python).
    ("[^a-c]{2,3}x", Seq(Rep(utf8_char([b for b in range(0x80) if b not in b"abc"]), 2, 3), "x")),
    ("-?\\d{1,3}(\\.\\d\\d)?", Seq(opt("-"), Rep(DIGIT, 1, 3), opt(Seq(".", DIGIT, DIGIT)))),
    ("[€é]x|😀+|\"[a-z]*\"", Alt(Seq(Alt("€", "é"), "x"), Rep(lit("😀"), 1), Seq('"', Rep(byte_range(0x61, 0x7A)), '"'))),
    ("(true|false|null)(, ?(true|false))*", Seq(Alt("true", "false", "null"),
                                                Rep(Seq(",", opt(" "), Alt("true", "false"))))),
]


@pytest.mark.parametrize("case", range(len(REGEX_CASES)))
def test_regex_masks_equal_the_reference(small, case):
    tokenizer, texts, end = small
    pattern, language = REGEX_CASES[case]
    ref = Reference(language)
    grammar = glm.Grammar.regex(tokenizer, pattern, end_token_ids=[end])
    import re
    steps, ended = compare(grammar, ref, texts, end, walks=25, seed=100 + case,
                           check=lambda text: re.fullmatch(pattern, text.decode()) or pytest.fail(text))
    assert steps >= 60 and ended >= 10, (steps, ended)


def test_reference_rejects_what_it_should(small):
    """The reference itself: a sanity check that it is not trivially permissive."""
    ref = Reference(document(0, g(0, json_string(lo=2, hi=4))))
    assert ref.run(ref.start, b'"ab"') is not None and ref.is_member(ref.run(ref.start, b'"ab"'))
    assert ref.run(ref.start, b'"abcde') is None
    assert ref.run(ref.start, b'"\xc3') is not None and ref.run(ref.start, b'"\xc3"') is None
    assert ref.run(ref.start, b'"\\ud8') is None and ref.run(ref.start, b'"\\ud7') is not None
    assert ref.run(ref.start, b'"a"') is None and not ref.is_member(ref.run(ref.start, b'"a'))


def follow(grammar, ref, texts, end, path):
    """Walks the given pieces (then the end id), comparing masks with the reference at every step."""
    ids = {p: i for i, p in enumerate(texts) if p}
    matcher, d, text = grammar.matcher(), ref.start, b""
    for piece in path + [None]:
        expected = expected_mask(ref, d, texts, end)
        actual = set(matcher.allowed_tokens())
        assert actual == expected, "after %r: extra %r, missing %r" % (
            text, sorted(texts[i] or b"<end>" for i in actual - expected)[:12],
            sorted(texts[i] or b"<end>" for i in expected - actual)[:12])
        token = end if piece is None else ids[piece]
        assert token in actual, (text, piece)
        matcher.accept(token)
        if piece is not None:
            text += piece
            d = ref.run(d, piece)
    assert matcher.ended
    return text


@pytest.mark.parametrize("whitespace", [0, 2])
def test_split_characters_and_tokens_past_the_value(small, whitespace):
    """Paths through the cases that take byte tokens cutting characters (é as C3 + A9, € as E2 + 82 + AC glued
    to a quote, 😀 as F0 9F + 98 80) and tokens that end the value and go on past it ('"}', '}\\n')."""
    tokenizer, texts, end = small
    paths = [
        (0, [b'{"', b"name", b'":', b'"', b"\xc3", b"\xa9\"", b"}"]),
        (0, [b'{"', b"name", b'":"', b"a\xc3", b"\xa9", b"\xe2", b"\x82", b"\xac\"", b'}']),
        (0, [b"{\"", b"name", b"\":\"", b"\xf0\x9f", b"\x98\x80", b"\"}"]),
        (2, [b"\xf0\x9f", b"\x98\x80", b"\xc3", b"\xa9\""]),
        (4, [b"\"", b"\xe2", b"\x82\xac", b"\\u00", b"e9", b"\""]),
        # After \u: no surrogate (d8.., dc..) may follow, any other BMP code does.
        (4, [b"\"", b"\\u", b"00e", b"9", b"a", b"\""]),
    ]
    for case, path in paths:
        schema, language = JSON_CASES[case]
        if case == 2:
            path = [b"\""] + path
        ref = Reference(language(whitespace))
        grammar = glm.Grammar.json_schema(tokenizer, schema, strict=True, max_whitespace=whitespace,
                                          end_token_ids=[end])
        text = follow(grammar, ref, texts, end, path)
        validator(schema)(text)
        if whitespace:
            # A token that closes the value and brings whitespace after it, then the end id.
            text = follow(grammar, ref, texts, end, path[:-1] + [path[-1] + b"\n"] if path[-1] + b"\n" in texts
                          else path + [b"\n"])
            validator(schema)(text)


UNSUPPORTED = {
    "multipleOf": {"type": "integer", "multipleOf": 3}, "uniqueItems": {"type": "array", "uniqueItems": True},
    "contains": {"type": "array", "contains": {"type": "integer"}},
    "patternProperties": {"type": "object", "patternProperties": {"^a": {}}},
    "propertyNames": {"propertyNames": {"maxLength": 3}}, "minProperties": {"type": "object", "minProperties": 1},
    "maxProperties": {"maxProperties": 2}, "not": {"not": {"type": "null"}},
    "if": {"if": {"type": "string"}, "then": {"maxLength": 2}}, "dependentRequired": {"dependentRequired": {"a": ["b"]}},
    "dependencies": {"dependencies": {"a": ["b"]}}, "unevaluatedProperties": {"unevaluatedProperties": False},
    'format "uri-reference"': {"type": "object", "properties": {"u": {"type": "string", "format": "uri-reference"}}},
}


@pytest.mark.parametrize("keyword", sorted(UNSUPPORTED))
def test_unsupported_keywords_strict_and_lax(small, keyword):
    """Item 3: with strict an error naming the keyword; without, compiled and listed as ignored."""
    tokenizer, _, end = small
    with pytest.raises(glm.UnsupportedError, match=keyword):
        glm.Grammar.json_schema(tokenizer, UNSUPPORTED[keyword], strict=True, end_token_ids=[end])
    ignored = glm.Grammar.json_schema(tokenizer, UNSUPPORTED[keyword], end_token_ids=[end]).info()["ignored"]
    assert any(keyword in note for note in ignored), ignored


def test_annotations_and_supported_formats_are_strict(small):
    tokenizer, _, end = small
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "title": "t",
              "description": "d", "examples": [{}], "default": {}, "$comment": "c", "deprecated": False,
              "type": "object", "properties": {f: {"type": "string", "format": f, "readOnly": True} for f in
                                               ["date-time", "date", "time", "uuid", "email", "ipv4", "ipv6", "uri",
                                                "hostname"]}}
    assert glm.Grammar.json_schema(tokenizer, schema, strict=True, end_token_ids=[end]).info()["ignored"] == []


def test_tool_call_masks_equal_the_reference(small):
    """GLM-4.7's call format for a named tool (glm.h): one call, declared parameters in order, the required one
    present; an integer as JSON (whitespace before it), a string raw; whitespace around the call."""
    tokenizer, texts, end = small
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 0, "maximum": 12}, "s": {"type": "string", "maxLength": 2}},
        "required": ["n"], "additionalProperties": False}}}]
    n = 2
    raw = utf8_char([b for b in range(0x20, 0x80)] + [0x09, 0x0A, 0x0D])
    language = Seq(gap(n), "<tool_call>f<arg_key>n</arg_key><arg_value>", gap(n), integers(0, 12), "</arg_value>",
                   opt(Seq("<arg_key>s</arg_key><arg_value>", Rep(raw, 0, 2), "</arg_value>")), "</tool_call>",
                   gap(n))
    ref = Reference(language)
    grammar = glm.Grammar.tool_calls(tokenizer, tools, tool_choice={"type": "function", "function": {"name": "f"}},
                                     max_whitespace=n, end_token_ids=[end])
    steps, ended = compare(grammar, ref, texts, end, walks=25, seed=7)
    assert steps >= 100 and ended >= 10, (steps, ended)
