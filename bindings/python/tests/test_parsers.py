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
