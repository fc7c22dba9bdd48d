"""Every recorded vLLM 0.33 parser case through the Python API, batch and streaming."""
import json
import random

import pytest

import glm
from fixtures import FIXTURES, jsonl

CASES = jsonl("parsers", "parser_cases.jsonl")
DEVIATIONS = json.loads((FIXTURES / "parsers" / "libglm_deviations.json").read_text())["cases"]


def fixture_shape(message):
    """The fixture's shape: arguments decoded as json.loads does."""
    return {
        "reasoning": message["reasoning_content"],
        "content": message["content"],
        "tool_calls": [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                       for c in message["tool_calls"]],
    }


def concatenated(events):
    reasoning, content, names, arguments = "", "", [], []
    for delta in events:
        reasoning += delta.get("reasoning_content", "")
        content += delta.get("content", "")
        for call in delta.get("tool_calls", []):
            if "id" in call:
                assert call["index"] == len(names) and call["type"] == "function"
                names.append(call["function"]["name"])
                arguments.append("")
            if "arguments" in call.get("function", {}):
                arguments[call["index"]] += call["function"]["arguments"]
    return {"reasoning": reasoning or None, "content": content or None,
            "tool_calls": [{"name": n, "arguments": json.loads(a)} for n, a in zip(names, arguments)]}


def options(case):
    return dict(tools=case["tools"], thinking=case["prompt_tail"].endswith("<think>"), tool_call_id_seed=7)


def stream(case, chunks):
    parser = glm.StreamParser(**options(case))
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.flush()
    return events, parser.finish()


def test_fixture_complete():
    assert len(CASES) == 26


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_batch(case):
    message = glm.parse_output(case["model_output"], **options(case))
    assert message["role"] == "assistant"
    expected = DEVIATIONS.get(case["name"], {}).get("batch", case["expected"])
    assert fixture_shape(message) == expected


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_streaming(case):
    events, final = stream(case, case["stream_chunks"])
    expected = DEVIATIONS.get(case["name"], {}).get("streamed", case["expected_streaming"])
    assert concatenated(events) == expected
    assert final == glm.parse_output(case["model_output"], **options(case))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_any_chunking_gives_the_batch_result(case):
    rng = random.Random(case["name"])
    text = case["model_output"]
    batch = glm.parse_output(text, **options(case))
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 20)))) if len(text) > 1 else []
        chunks = [text[i:j] for i, j in zip([0] + cuts, cuts + [len(text)])]
        events, final = stream(case, chunks)
        assert final == batch
        assert "".join(e.get("reasoning_content", "") for e in events) == (batch["reasoning_content"] or "")


def test_bad_options_are_value_errors():
    with pytest.raises(glm.InvalidArgumentError, match="tools"):
        glm.parse_output("x", tools=[1, 2])
    with pytest.raises(glm.InvalidArgumentError):
        glm.StreamParser(tools="not a list")


def test_non_str_text_is_a_type_error():
    with pytest.raises(TypeError):
        glm.parse_output(b"bytes")


# Issue 10, items 3-6, through the Python API. Expected messages are written out by hand (see
# Sources/GLMParsers/OutputParser.swift for the documented choices); each runs batch, one character per chunk,
# and random chunkings, and the streamed argument deltas must add up to the final arguments.
TOOLS = [
    {"type": "function", "function": {"name": "write_file", "parameters": {"type": "object", "properties": {
        "path": {"type": "string"}, "content": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "plot", "parameters": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"n": {"type": "integer"}, "x": {"type": "string"}}},
        "points": {"type": "array", "items": {"type": "string"}}}}}},
]

FIDELITY_CASES = [
    ("value_quoting_the_format",
     "</think>Sure.<tool_call>write_file<arg_key>content</arg_key><arg_value>Calls look like <tool_call>NAME ... "
     "</tool_call>, reasoning ends at </think>.</arg_value></tool_call>",
     {"content": "Sure.", "calls": [("write_file", '{"content": "Calls look like <tool_call>NAME ... </tool_call>, '
                                                   'reasoning ends at </think>."}')]}),
    ("cut_inside_closing_tag",
     "</think><tool_call>write_file<arg_key>content</arg_key><arg_value>hello world</arg_va",
     {"content": None, "calls": [("write_file", '{"content": "hello world"}')]}),
    ("typed_value_cut_inside_closing_tag",
     "</think><tool_call>get_weather<arg_key>days</arg_key><arg_value>12</arg_value",
     {"content": None, "calls": [("get_weather", '{"days": 12}')]}),
    ("model_json_kept",
     '</think><tool_call>plot<arg_key>spec</arg_key><arg_value>{"n": "3", "x": 3e-3, "z": -0.0, "big": 1e16, '
     '"tiny": 0.00001, "f": 3.0, "i": 123456789012345678901234567890}</arg_value><arg_key>points</arg_key>'
     '<arg_value>[1, -0.0, 2.5E-7]</arg_value></tool_call>',
     {"content": None, "calls": [("plot", '{"spec": {"n": "3", "x": 0.003, "z": -0.0, "big": 1e+16, "tiny": 1e-05, '
                                          '"f": 3.0, "i": 123456789012345678901234567890}, '
                                          '"points": [1, -0.0, 2.5e-07]}')]}),
    ("text_after_call_unstripped",
     "</think>Checking. <tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value></tool_call> Done. ",
     {"content": "Checking.  Done. ", "calls": [("get_weather", '{"city": "Rome"}')]}),
    ("whitespace_after_call_stripped",
     "</think> Checking. <tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value></tool_call>\n",
     {"content": "Checking.", "calls": [("get_weather", '{"city": "Rome"}')]}),
]


def _stream_arguments(events):
    arguments = {}
    for delta in events:
        for call in delta.get("tool_calls", []):
            arguments.setdefault(call["index"], "")
            arguments[call["index"]] += call.get("function", {}).get("arguments", "")
    return [arguments[i] for i in sorted(arguments)]


@pytest.mark.parametrize("name,text,expected", FIDELITY_CASES, ids=[c[0] for c in FIDELITY_CASES])
def test_fidelity_batch_and_every_chunking(name, text, expected):
    message = glm.parse_output(text, tools=TOOLS, tool_call_id_seed=3)
    assert message["content"] == expected["content"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]] == expected["calls"]
    rng = random.Random(name)
    chunkings = [[text], list(text)]
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, min(30, len(text) - 1))))
        chunkings.append([text[i:j] for i, j in zip([0] + cuts, cuts + [len(text)])])
    for chunks in chunkings:
        parser = glm.StreamParser(tools=TOOLS, tool_call_id_seed=3)
        events = []
        for chunk in chunks:
            events += parser.feed(chunk)
        events += parser.flush()
        assert parser.finish() == message
        assert _stream_arguments(events) == [args for _, args in expected["calls"]]
