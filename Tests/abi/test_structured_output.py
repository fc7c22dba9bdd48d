"""Constrained decoding from a C host (Tests/abi/structured_output.c): response_format with stop strings,
max_tokens, streaming, seeds, bias and penalties through glm_chat_complete, and glm_grammar_* walks whose outputs
validate with jsonschema."""
import json
import sys

import jsonschema
import pytest

from abi_support import ROOT, run

sys.path.insert(0, str(ROOT / "bindings" / "python"))
import glm  # noqa: E402

MODEL = ROOT / "Tests" / "Fixtures" / "models" / "glm-tiny-chat"
PAIR = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}, "b": {"type": "integer"}},
        "required": ["a", "b"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
MARKUP = "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>"


def fmt(schema):
    return {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}}


def user(text="What is the weather in Paris?"):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def tokenizer():
    return glm.Tokenizer.from_file(MODEL)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("structured")
    exe = folder / "structured_output"
    build = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Iinclude", "Tests/abi/structured_output.c",
                 "-o", str(exe), "-Lbuild/lib", "-lglm", "-Wl,-rpath," + str(ROOT / "build" / "lib")])
    assert build.returncode == 0, build.stderr
    no_escapes = {str(i): -100 for i in range(tokenizer.vocab_size)
                  if not tokenizer.is_special(i) and b"\\" in tokenizer.token_to_piece(i)}
    off = {"chat_template_kwargs": {"enable_thinking": False}}
    requests = {
        "stop": dict(messages=user(), response_format=fmt(PAIR), stop=['"b"'], seed=3, temperature=1.0,
                     logit_bias=no_escapes, max_tokens=200, stream=True, **off),
        "length": dict(messages=user(), response_format=fmt(PAIR), max_tokens=4, seed=5, stream=True, **off),
        "seed1": dict(messages=user(), response_format=fmt(PAIR), seed=1, temperature=1.5, max_tokens=150,
                      stream=True, **off),
        "seed1again": dict(messages=user(), response_format=fmt(PAIR), seed=1, temperature=1.5, max_tokens=150,
                           **off),
        "seed2": dict(messages=user(), response_format=fmt(PAIR), seed=2, temperature=1.5, max_tokens=150, **off),
        "penalties": dict(messages=user('Pick colors: ["red", "green", "blue"] or ["a"]'),
                          response_format=fmt({"type": "array", "items": {"enum": ["red", "green", "blue", "a", "b"]},
                                               "minItems": 3, "maxItems": 4}),
                          temperature=0, max_tokens=300, repetition_penalty=1.3, frequency_penalty=0.6,
                          presence_penalty=0.4, logit_bias={str(tokenizer.encode("\n")[0]): -3.0}, **off),
        "markup": dict(messages=user(), tools=TOOLS, response_format=fmt({"const": MARKUP}), logit_bias=no_escapes,
                       seed=4, max_tokens=300, stream=True, **off),
        "required": dict(messages=user(), tools=TOOLS, tool_choice="required", seed=6, temperature=1.0,
                         max_tokens=400, stream=True),
    }
    (folder / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in requests.values()))
    schemas = [PAIR, {"type": "array", "items": {"type": "number", "minimum": -1, "exclusiveMaximum": 2.5},
                      "minItems": 1, "maxItems": 3},
               {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
               {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[a-f0-9]{4}-x$"},
                                                 "tags": {"type": "array", "items": {"type": "string"}}},
                "required": ["id"]}] * 2
    (folder / "schemas.jsonl").write_text("".join(json.dumps(s) + "\n" for s in schemas))
    result = run([str(exe), str(MODEL), str(folder / "requests.jsonl"), str(folder / "schemas.jsonl")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.endswith("done\n")
    responses, deltas, walks, current = {}, {}, [], []
    names = iter(requests)
    for line in result.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "DELTA":
            current.append(json.loads(rest))
        elif kind == "RESPONSE":
            name = next(names)
            responses[name], deltas[name], current = json.loads(rest), current, []
        elif kind == "WALK":
            index, text = rest.split(" ")
            walks.append((schemas[int(index)], None if text == "-" else bytes.fromhex(text)))
    return requests, responses, deltas, walks


def content(response):
    return response["choices"][0]["message"]["content"] or ""


def finish(response):
    return response["choices"][0]["finish_reason"]


def streamed(deltas, key="content"):
    return "".join(d.get(key) or "" for d in deltas)


def viable(tokenizer, schema, text):
    matcher = glm.Grammar.json_schema(tokenizer, schema, end_token_ids=[4256, 4263, 4265]).matcher()
    try:
        matcher.accept_text(text)
    except glm.InvalidArgumentError:
        return False
    return True


def test_stop_string(outputs, tokenizer):
    _, responses, deltas, _ = outputs
    r = responses["stop"]
    assert finish(r) == "stop" and '"b"' not in content(r) and viable(tokenizer, PAIR, content(r) + '"b"'), r
    assert streamed(deltas["stop"]) == content(r)


def test_max_tokens_partial_value(outputs, tokenizer):
    _, responses, deltas, _ = outputs
    r = responses["length"]
    assert finish(r) == "length" and r["usage"]["completion_tokens"] == 4
    assert viable(tokenizer, PAIR, content(r)) and streamed(deltas["length"]) == content(r)
    with pytest.raises(json.JSONDecodeError):
        json.loads(content(r))


def test_seeds_and_streaming(outputs):
    _, responses, deltas, _ = outputs
    assert responses["seed1"]["choices"] == responses["seed1again"]["choices"]
    assert streamed(deltas["seed1"]) == content(responses["seed1"])
    assert content(responses["seed1"]) != content(responses["seed2"])
    for name in ("seed1", "seed2"):
        if finish(responses[name]) == "stop":
            jsonschema.validate(json.loads(content(responses[name])), PAIR)


def test_penalties_match_the_python_path(outputs):
    """Greedy with bias and penalties: the same reply as Model.chat, which test_grammar_chat.py checks against a
    reference loop over the masked logits."""
    requests, responses, _, _ = outputs
    request = dict(requests["penalties"])
    model = glm.Model(MODEL, threads=1)
    expected = model.chat(request.pop("messages"), **request)
    assert finish(responses["penalties"]) == "stop"
    assert content(responses["penalties"]) == content(expected)
    jsonschema.validate(json.loads(content(responses["penalties"])), requests["penalties"]["response_format"]
                        ["json_schema"]["schema"])


def test_constrained_content_is_returned_verbatim(outputs):
    _, responses, deltas, _ = outputs
    r = responses["markup"]
    assert finish(r) == "stop" and not r["choices"][0]["message"].get("tool_calls")
    assert "<tool_call>" in content(r) and json.loads(content(r)) == MARKUP
    assert streamed(deltas["markup"]) == content(r)


def test_required_tool_call_streams(outputs):
    _, responses, deltas, _ = outputs
    r = responses["required"]
    assert finish(r) == "tool_calls", r  # seed 6 finishes its call within max_tokens
    calls = r["choices"][0]["message"]["tool_calls"]
    assert calls and all(c["function"]["name"] == "get_weather" for c in calls)
    for c in calls:
        jsonschema.validate(json.loads(c["function"]["arguments"]), TOOLS[0]["function"]["parameters"])
    assert any(d.get("tool_calls") for d in deltas["required"])


def test_grammar_walks_validate(outputs):
    _, _, _, walks = outputs
    finished = 0
    checker = jsonschema.FormatChecker(["date"])
    for schema, text in walks:
        if text is None:
            continue
        jsonschema.validate(json.loads(text.decode()), schema, format_checker=checker)
        finished += 1
    assert finished >= 6, walks
