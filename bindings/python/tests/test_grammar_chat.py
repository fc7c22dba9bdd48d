"""Constrained replies through Model.chat with the rest of the request: the content a response_format produced is
returned as written (never read as reasoning or tool calls), and stop strings, max_tokens, streaming, penalties
and seeds behave as they do without a constraint.

The tiny model is random-ish: the tests force what they need with logit_bias (the mask still decides what is
allowed), and otherwise check properties that hold whatever is drawn."""
import json

import jsonschema
import pytest

import glm
from fixtures import FIXTURES

MODEL = FIXTURES / "models" / "glm-tiny-chat"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def model():
    return glm.Model(MODEL, threads=2)


@pytest.fixture(scope="module")
def tokenizer(model):
    return model.tokenizer


def schema_format(schema, name="reply"):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def thinking(on):
    return {"chat_template_kwargs": {"enable_thinking": on}}


def no_escapes_bias(tokenizer, extra=None):
    """logit_bias pushing every id whose text holds a backslash down, so JSON strings are spelled raw."""
    bias = {}
    for i in range(tokenizer.vocab_size):
        if not tokenizer.is_special(i) and b"\\" in tokenizer.token_to_piece(i):
            bias[str(i)] = -100
    bias.update(extra or {})
    return bias


# Markup of every kind GLM-4.7's output parser knows, inside a JSON string.
MARKUP = ("<think>a</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
          "</tool_call> <tool_call>get_weather</tool_call>")


@pytest.mark.parametrize("think", [False, True])
@pytest.mark.parametrize("stream", [False, True])
def test_response_format_content_is_never_read_as_markup(model, tokenizer, think, stream):
    """A JSON value the schema allows may hold text that looks like reasoning or tool-call markup; with a
    response_format the reply is that JSON as content, even when tools are declared (tool_choice auto)."""
    end_think = tokenizer.token_to_id("</think>")
    # With thinking on, end the reasoning at once (the constraint starts after it).
    bias = no_escapes_bias(tokenizer, {str(end_think): 100} if think else None)
    options = dict(response_format=schema_format({"const": MARKUP}), logit_bias=bias, seed=1, temperature=0.7,
                   max_tokens=300, **thinking(think))
    if stream:
        content, reasoning, calls, finish = "", "", [], None
        for chunk in model.chat(QUESTION, tools=TOOLS, stream=True, **options):
            for choice in chunk["choices"]:
                delta = choice.get("delta", {})
                content += delta.get("content") or ""
                reasoning += delta.get("reasoning_content") or ""
                calls += delta.get("tool_calls") or []
                finish = choice.get("finish_reason") or finish
        message = {"content": content, "reasoning_content": reasoning or None, "tool_calls": calls}
    else:
        response = model.chat(QUESTION, tools=TOOLS, **options)
        message, finish = response["choices"][0]["message"], response["choices"][0]["finish_reason"]
    assert finish == "stop", message
    assert not message.get("tool_calls"), message
    assert "<tool_call>" in message["content"], message  # spelled raw: the case the test is about
    assert json.loads(message["content"]) == MARKUP
    assert not message.get("reasoning_content"), message


def test_json_object_content_is_kept_verbatim_with_tools(model, tokenizer):
    schema = {"type": "object", "properties": {"note": {"const": MARKUP}}, "required": ["note"],
              "additionalProperties": False}
    response = model.chat(QUESTION, tools=TOOLS, response_format=schema_format(schema),
                          logit_bias=no_escapes_bias(tokenizer), seed=2, temperature=0.7, max_tokens=300,
                          **thinking(False))
    choice = response["choices"][0]
    assert choice["finish_reason"] == "stop" and not choice["message"].get("tool_calls")
    assert json.loads(choice["message"]["content"]) == {"note": MARKUP}
