"""Constrained replies through Model.chat with the rest of the request: the content a response_format produced is
returned as written (never read as reasoning or tool calls), and stop strings, max_tokens, streaming, penalties
and seeds behave as they do without a constraint.

The tiny model is random-ish: the tests force what they need with logit_bias (the mask still decides what is
allowed), and otherwise check properties that hold whatever is drawn."""
import collections
import json

import jsonschema
import numpy as np
import pytest

import glm
from fixtures import DEMO_MODEL, WEATHER_QUESTION, WEATHER_TOOLS

MODEL = DEMO_MODEL
TOOLS = WEATHER_TOOLS
QUESTION = WEATHER_QUESTION


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


# ---- item 6: the rest of the request with a mask ----

EOS = [4256, 4263, 4265]  # config.json's eos_token_id: what ends a chat reply
PAIR = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}, "b": {"type": "integer"}},
        "required": ["a", "b"], "additionalProperties": False}


def viable(tokenizer, schema, text):
    """Whether `text` is the start of some output the schema accepts (the engine's own check, through C)."""
    matcher = glm.Grammar.json_schema(tokenizer, schema, end_token_ids=EOS).matcher()
    try:
        matcher.accept_text(text)
    except glm.InvalidArgumentError:
        return False
    return True


def test_stop_string_ends_a_constrained_reply(model, tokenizer):
    response = model.chat(QUESTION, response_format=schema_format(PAIR), stop=['"b"'], seed=3, temperature=1.0,
                          logit_bias=no_escapes_bias(tokenizer), max_tokens=200, **thinking(False))
    choice = response["choices"][0]
    content = choice["message"]["content"]
    assert choice["finish_reason"] == "stop", choice
    assert '"b"' not in content and viable(tokenizer, PAIR, content + '"b"'), content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_gives_length_and_a_partial_value(model, tokenizer, stream):
    options = dict(response_format=schema_format(PAIR), max_tokens=4, seed=5, temperature=1.0, **thinking(False))
    if stream:
        content, finish = "", None
        for chunk in model.chat(QUESTION, stream=True, **options):
            for choice in chunk["choices"]:
                content += choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
    else:
        response = model.chat(QUESTION, **options)
        content, finish = response["choices"][0]["message"]["content"] or "", response["choices"][0]["finish_reason"]
        assert response["usage"]["completion_tokens"] == 4
    assert finish == "length"
    assert viable(tokenizer, PAIR, content), content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_seeds_and_streaming(model):
    """The same seed gives the same constrained reply, streamed or not; other seeds give other replies."""
    replies = []
    for seed in range(4):
        options = dict(response_format=schema_format(PAIR), seed=seed, temperature=1.5, top_p=0.95, max_tokens=120,
                       **thinking(False))
        first = model.chat(QUESTION, **options)["choices"][0]
        again = model.session(1024).chat(QUESTION, **options)["choices"][0]
        streamed, finish = "", None
        for chunk in model.chat(QUESTION, stream=True, **options):
            for choice in chunk["choices"]:
                streamed += choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
        assert first == again
        assert streamed == first["message"]["content"] and finish == first["finish_reason"]
        if first["finish_reason"] == "stop":
            jsonschema.validate(json.loads(first["message"]["content"]), PAIR)
        replies.append(first["message"]["content"])
    assert len(set(replies)) >= 3, replies


def test_penalties_and_bias_act_on_the_masked_logits(model, tokenizer):
    """Greedy decoding with logit_bias and the repetition, frequency and presence penalties under a mask, against
    a reference loop written here: fresh logits for prompt + output, ids outside the mask at -inf, then bias
    and penalties as vLLM defines them, then argmax."""
    schema = {"type": "array", "items": {"enum": ["red", "green", "blue", "a", "b"]}, "minItems": 3,
              "maxItems": 4}
    bias = {tokenizer.encode("\n")[0]: -3.0, tokenizer.encode("\"\\")[0]: -1.0}
    rep, freq, pres = 1.3, 0.6, 0.4
    # The prompt holds tokens the reply uses ('red', '",', ']'), so the repetition penalty acts on prompt ids.
    question = [{"role": "user", "content": 'Pick colors: ["red", "green", "blue"] or ["a"]'}]
    response = model.chat(question, response_format=schema_format(schema), temperature=0, max_tokens=300,
                          repetition_penalty=rep, frequency_penalty=freq, presence_penalty=pres,
                          logit_bias={str(k): v for k, v in bias.items()}, **thinking(False))
    prompt = tokenizer.encode(glm.render_chat(question, enable_thinking=False))
    assert response["usage"]["prompt_tokens"] == len(prompt)

    matcher = glm.Grammar.json_schema(tokenizer, schema, end_token_ids=EOS).matcher()
    out = []
    for _ in range(300):
        logits = np.asarray(model.logits(prompt + out)[-1], dtype=np.float64)
        row = np.full_like(logits, -np.inf)
        allowed = matcher.allowed_tokens()
        row[allowed] = logits[allowed]
        for token, b in bias.items():
            row[token] += b
        for token in set(prompt) | set(out):
            row[token] = row[token] / rep if row[token] > 0 else row[token] * rep
        for token, count in collections.Counter(out).items():
            row[token] -= freq * count + pres
        token = int(np.argmax(row))
        matcher.accept(token)
        if token in EOS:
            break
        out.append(token)
    choice = response["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == tokenizer.decode(out)
    assert len(set(out)) > 1  # the penalties made the reply vary (without them it repeats one item)
    jsonschema.validate(json.loads(choice["message"]["content"]), schema)
