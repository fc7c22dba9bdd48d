"""Constrained decoding through the C ABI: every constrained output validates (jsonschema, glm.parse_output),
and the masks are exactly the tokens some valid output continues with, checked on the whole 4,292-id vocabulary of
glm-tiny-chat against references written here.

The walks pick uniformly among the allowed ids (and the chat tests sample the tiny model at high temperature), so
nothing but the mask keeps the outputs valid."""
import datetime
import ipaddress
import itertools
import json
import random
import re
import urllib.parse
import uuid

import jsonschema
import pytest

import glm
import json_spellings
from fixtures import FIXTURES, jsonl

MODEL = FIXTURES / "models" / "glm-tiny-chat"
END = 4256  # <|endoftext|>


@pytest.fixture(scope="module")
def tokenizer():
    return glm.Tokenizer.from_file(MODEL)


@pytest.fixture(scope="module")
def pieces(tokenizer):
    """Each id's bytes, None for ids that are never text (special)."""
    return [None if tokenizer.is_special(i) else tokenizer.token_to_piece(i) for i in range(tokenizer.vocab_size)]


@pytest.fixture(scope="module")
def model():
    return glm.Model(MODEL, threads=1)


# ---- formats, checked with the standard library (jsonschema's own checkers need optional packages) ----

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date", raises=ValueError)
def _date(s):
    return not isinstance(s, str) or (re.fullmatch(r"\d{4}-\d{2}-\d{2}", s) and datetime.date.fromisoformat(s))


def _time(s):
    m = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))", s)
    return bool(m) and int(m[1]) < 24 and int(m[2]) < 60 and int(m[3]) < 60 and \
        (m[6] is None or (int(m[6]) < 24 and int(m[7]) < 60))


@FORMATS.checks("time")
def _time_format(s):
    return not isinstance(s, str) or _time(s)


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(s):
    if not isinstance(s, str):
        return True
    return len(s) > 11 and s[10] in "Tt" and bool(_date(s[:10])) and _time(s[11:])


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(s):
    return not isinstance(s, str) or (bool(uuid.UUID(s)) and all(s[i] == "-" for i in (8, 13, 18, 23)))


@FORMATS.checks("ipv4", raises=ValueError)
def _ipv4(s):
    return not isinstance(s, str) or bool(ipaddress.IPv4Address(s))


@FORMATS.checks("ipv6", raises=ValueError)
def _ipv6(s):
    return not isinstance(s, str) or bool(ipaddress.IPv6Address(s))


@FORMATS.checks("email")
def _email(s):
    return not isinstance(s, str) or "@" in s


@FORMATS.checks("uri")
def _uri(s):
    if not isinstance(s, str):
        return True
    parts = urllib.parse.urlsplit(s)
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme)) and not re.search(r"[\s<>\"{}|\\^`]", s) \
        and not re.search(r"%(?![0-9A-Fa-f]{2})", s)


@FORMATS.checks("hostname")
def _hostname(s):
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    return not isinstance(s, str) or (len(s) <= 253 and bool(re.fullmatch(r"(%s\.)*%s" % (label, label), s)))


def validate(instance, schema):
    jsonschema.validators.validator_for(schema)(schema, format_checker=FORMATS).validate(instance)


def supported_schemas():
    """The fixture schemas every keyword of which libglm enforces (strict compile succeeds)."""
    return [c for name in ("handwritten.jsonl", "jsonschemabench.jsonl") for c in jsonl("grammar", name)]


CLOSERS = re.compile(rb'["}\]<>]')


def walk(grammar, seed, limit=700, pieces=None):
    """A uniformly random walk through the masks: (ids, ended). Past half the budget it prefers the end id and
    then tokens with closing characters, so most walks finish (which token closes is still the mask's choice)."""
    rng = random.Random(seed)
    matcher = grammar.matcher()
    ids = []
    for step in range(limit):
        allowed = matcher.allowed_tokens()
        assert allowed, "no token allowed after %r" % ids
        if step > limit // 2 and END in allowed:
            allowed = [END]
        elif step > limit // 2 and pieces is not None:
            closing = [t for t in allowed if t != END and pieces[t] and CLOSERS.search(pieces[t])]
            allowed = closing or allowed
        token = rng.choice(allowed)
        matcher.accept(token)
        if token == END:
            assert matcher.ended
            return ids, True
        ids.append(token)
    return ids, False


# ---- soundness ----

def test_every_completed_walk_validates(tokenizer, pieces):
    checked, schemas = 0, 0
    for case in supported_schemas():
        try:
            grammar = glm.Grammar.json_schema(tokenizer, case["schema"], strict=True, end_token_ids=[END])
        except glm.UnsupportedError:
            continue  # the lax mode's outputs may break what it ignores: not a soundness case
        schemas += 1
        for seed in range(4):
            ids, ended = walk(grammar, seed, pieces=pieces)
            if not ended:
                continue
            text = tokenizer.decode(ids)
            validate(json.loads(text), case["schema"])
            checked += 1
    assert schemas >= 12 and checked >= 40, (schemas, checked)


def test_chat_replies_validate(model):
    """The tiny model at temperature 2 through Model.chat (thinking on and off): every finished reply's content
    validates."""
    checked = 0
    cases = [c for c in supported_schemas() if c["name"] in ("person", "event", "shapes", "tuple", "nullable", "product",
                                                              "network", "allof")]
    assert len(cases) == 8
    for case in cases:
        for seed in range(3):
            response = model.session(2048).chat(
                [{"role": "user", "content": "Fill in: %s" % case["name"]}], seed=seed, temperature=2.0,
                max_tokens=600, chat_template_kwargs={"enable_thinking": seed % 2 == 1},
                response_format={"type": "json_schema", "json_schema": {"name": case["name"], "schema": case["schema"],
                                                                        "strict": True}})
            choice = response["choices"][0]
            if choice["finish_reason"] != "stop":
                assert choice["finish_reason"] == "length"
                continue
            validate(json.loads(choice["message"]["content"]), case["schema"])
            checked += 1
    assert checked >= 8


TOOLS = [
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 30},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10},
        "site": {"type": ["string", "null"], "format": "hostname"},
        "filters": {"type": "object", "properties": {"lang": {"enum": ["en", "fr"]}}, "additionalProperties": False},
        "weights": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "maxItems": 3}},
        "required": ["query"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "book_flight", "parameters": {"type": "object", "properties": {
        "from": {"type": "string", "pattern": "^[A-Z]{3}$"}, "to": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "date": {"type": "string", "format": "date"}, "seats": {"type": "integer", "minimum": 1, "maximum": 4},
        "refundable": {"type": "boolean"}},
        "required": ["from", "to", "date"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "note", "parameters": {"type": "object", "properties": {
        "text": {"type": "string"}}, "required": ["text"]}}},
]


def check_calls(message, tools, only=None):
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    calls = message["tool_calls"]
    assert calls, message
    for call in calls:
        name = call["function"]["name"]
        assert name in schemas and (only is None or name == only), call
        validate(json.loads(call["function"]["arguments"]), schemas[name])
    return len(calls)


def test_tool_call_walks_parse_and_validate(tokenizer, pieces):
    checked = 0
    for choice, reasoning in [("required", True), ("required", False),
                              ({"type": "function", "function": {"name": "book_flight"}}, True)]:
        grammar = glm.Grammar.tool_calls(tokenizer, TOOLS, tool_choice=choice, reasoning=reasoning,
                                         end_token_ids=[END])
        for seed in range(6):
            ids, ended = walk(grammar, seed, limit=900, pieces=pieces)
            if not ended:
                continue
            message = glm.parse_output(tokenizer.decode(ids), TOOLS, thinking=reasoning)
            checked += check_calls(message, TOOLS, None if choice == "required" else "book_flight")
            if choice != "required":
                assert len(message["tool_calls"]) == 1
    assert checked >= 8


def test_chat_tool_choice(model):
    checked = 0
    for seed in range(4):
        for choice in ("required", {"type": "function", "function": {"name": "search"}}):
            response = model.session(2048).chat([{"role": "user", "content": "Find flights to Rome"}], tools=TOOLS,
                                                tool_choice=choice, seed=seed, temperature=1.5, max_tokens=600)
            choice_out = response["choices"][0]
            if choice_out["finish_reason"] == "length":
                continue
            assert choice_out["finish_reason"] == "tool_calls"
            checked += check_calls(choice_out["message"], TOOLS, None if choice == "required" else "search")
    assert checked >= 4


# ---- completeness: masks against references on the real vocabulary ----

def json_string_spellings(s):
    """Every JSON spelling of a string literal libglm may write: each character raw (when allowed), as its short
    escape, or as \\u with hex digits in either case (characters of the Basic Multilingual Plane)."""
    forms = [json_spellings.char_spellings(ch) for ch in s]
    return ['"%s"' % "".join(p) for p in itertools.product(*forms)]


def spellings(value):
    """Compact JSON texts of `value` (keys in their order) with every string spelling."""
    if isinstance(value, str):
        return json_string_spellings(value)
    if isinstance(value, list):
        parts = [spellings(v) for v in value]
        return ["[" + ",".join(p) + "]" for p in itertools.product(*parts)]
    if isinstance(value, dict):
        parts = [[k + ":" + v for k in json_string_spellings(key) for v in spellings(val)] for key, val in value.items()]
        return ["{" + ",".join(p) + "}" for p in itertools.product(*parts)]
    return [json.dumps(value)]


class Reference:
    """A finite language: byte strings and all their prefixes."""

    def __init__(self, texts):
        self.members = {t.encode() for t in texts}
        self.prefixes = {m[:k] for m in self.members for k in range(len(m) + 1)}

    def allowed(self, text, pieces):
        out = {i for i, p in enumerate(pieces) if p is not None and text + p in self.prefixes}
        if text in self.members:
            out.add(END)
        return out


def compare(grammar, reference, pieces, walks, seed):
    rng = random.Random(seed)
    steps = 0
    for _ in range(walks):
        matcher, text = grammar.matcher(), b""
        while True:
            expected = reference.allowed(text, pieces)
            actual = set(matcher.allowed_tokens())
            assert actual == expected, "after %r: extra %r, missing %r" % (
                text, [pieces[i] for i in actual - expected][:10], [pieces[i] for i in expected - actual][:10])
            steps += 1
            token = rng.choice(sorted(expected))
            matcher.accept(token)
            if token == END:
                break
            text += pieces[token]
    return steps


def test_masks_are_exactly_the_valid_continuations(tokenizer, pieces):
    cases = [
        ({"type": "object", "properties": {"a": {"type": "integer", "minimum": -3, "maximum": 30},
                                           "b": {"enum": ["x", "yz", None]}},
          "required": ["a"], "additionalProperties": False},
         [{"a": a} for a in range(-10, 40)] + [{"a": a, "b": b} for a in range(-3, 31) for b in ("x", "yz", None, "w", 1)]),
        ({"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 3},
         [list(p) for n in range(0, 5) for p in itertools.product([True, False, None], repeat=n)]),
        ({"anyOf": [{"type": "string", "enum": ["é", "a/b"]}, {"const": [1, {"k": None}]}]},
         ["é", "a/b", "c", [1, {"k": None}], [1]]),
    ]
    steps = 0
    for schema, candidates in cases:
        members = [text for v in candidates if jsonschema.Draft202012Validator(schema).is_valid(v)
                   for text in spellings(v)]
        assert members
        grammar = glm.Grammar.json_schema(tokenizer, schema, max_whitespace=0, end_token_ids=[END])
        steps += compare(grammar, Reference(members), pieces, walks=25, seed=len(members))
    units = ["ab", "aé"] + ["a%d" % d for d in range(10)]
    regex_members = [x + y + c for x in units for y in [""] + units for c in ("", "c")]
    grammar = glm.Grammar.regex(tokenizer, "(ab|a[0-9é]){1,2}c?", end_token_ids=[END])
    steps += compare(grammar, Reference(regex_members), pieces, walks=25, seed=3)
    assert steps > 200


# ---- the API ----

def test_mask_layout_rollback_and_errors(tokenizer):
    grammar = glm.Grammar.regex(tokenizer, "yes|no", end_token_ids=[END])
    info = grammar.info()
    assert info["vocab_size"] == tokenizer.vocab_size and info["mask_words"] == (tokenizer.vocab_size + 31) // 32
    matcher = grammar.matcher()
    words = matcher.mask()
    allowed = matcher.allowed_tokens()
    assert allowed and all((int(words[t // 32]) >> (t % 32)) & 1 for t in allowed)
    assert sum(bin(int(w)).count("1") for w in words) == len(allowed)
    assert {tokenizer.decode([t]) for t in allowed} <= {"y", "ye", "yes", "n", "no"}
    first = tokenizer.encode("yes")[0]
    with pytest.raises(glm.InvalidArgumentError):
        matcher.accept(tokenizer.encode("maybe")[0])
    matcher.accept(first)
    matcher.rollback(1)
    assert matcher.allowed_tokens() == allowed
    matcher.accept_text("ye")
    assert not matcher.can_end
    matcher.accept_text("s")
    assert matcher.can_end and matcher.allowed_tokens() == [END]
    matcher.accept(END)
    assert matcher.ended and matcher.allowed_tokens() == []
    matcher.reset()
    assert matcher.allowed_tokens() == allowed
    with pytest.raises(glm.UnsupportedError, match="uniqueItems"):
        glm.Grammar.json_schema(tokenizer, {"uniqueItems": True}, strict=True)
    lax = glm.Grammar.json_schema(tokenizer, {"type": "array", "uniqueItems": True})
    assert any("uniqueItems" in note for note in lax.info()["ignored"])
    with pytest.raises(glm.InvalidArgumentError, match="not declare"):
        glm.Grammar.tool_calls(tokenizer, TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}})


def test_chat_refuses_what_it_cannot_enforce(model):
    chat = model.session(256)
    with pytest.raises(glm.UnsupportedError, match="uniqueItems"):
        chat.chat([{"role": "user", "content": "x"}], max_tokens=2, response_format={
            "type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {"uniqueItems": True}}})
    with pytest.raises(glm.InvalidArgumentError, match="tools"):
        chat.chat([{"role": "user", "content": "x"}], max_tokens=2, tool_choice="required")
