"""glm.Model.chat on the committed tiny chat model (trained to call a tool; greedy output = transformers')."""
import json

import pytest

import glm
from fixtures import FIXTURES

MODEL = FIXTURES / "models" / "glm-tiny-chat"
GREEDY = json.loads((MODEL / "greedy.json").read_text())
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def model():
    return glm.Model(MODEL, threads=2)


def test_greedy_completions_equal_transformers(model):
    tok = model.tokenizer
    for case in GREEDY["cases"]:
        request = dict(case["request"])
        request.pop("model", None)
        messages, tools = request.pop("messages"), request.pop("tools", None)
        response = model.session(512).chat(messages, tools=tools, **request)
        completion = [i for i in case["completion_ids"] if i not in GREEDY["eos_token_ids"]]
        text = tok.decode(completion)
        expected = glm.parse_output(text, tools, thinking=case["prompt_text"].endswith("<think>"))
        message = response["choices"][0]["message"]
        assert message["content"] == expected["content"], case["name"]
        assert message["reasoning_content"] == expected["reasoning_content"], case["name"]
        assert [c["function"] for c in message["tool_calls"]] == [c["function"] for c in expected["tool_calls"]]
        prompt_ids = case["prompt_ids"]
        assert response["usage"]["prompt_tokens"] == len(json.loads(prompt_ids) if isinstance(prompt_ids, str) else prompt_ids)


def test_tool_loop_with_prefix_reuse(model):
    session = model.session(1024)
    first = session.chat(QUESTION, tools=TOOLS, temperature=0)
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    messages = QUESTION + [choice["message"],
                           {"role": "tool", "tool_call_id": call["id"], "content": '{"city": "Paris", "temperature": 18, "condition": "sunny"}'}]
    second = session.chat(messages, tools=TOOLS, temperature=0)
    assert second["choices"][0]["finish_reason"] == "stop"
    assert "Paris" in second["choices"][0]["message"]["content"]
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] > first["usage"]["prompt_tokens"] - 2


def test_streaming_chunks_add_up_to_the_response(model):
    chunks = list(model.session(512).chat(QUESTION, tools=TOOLS, stream=True, temperature=0))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks)
    arguments = "".join(tc["function"].get("arguments", "") for c in chunks
                        for tc in c["choices"][0]["delta"].get("tool_calls", []))
    full = model.session(512).chat(QUESTION, tools=TOOLS, temperature=0)["choices"][0]["message"]
    assert reasoning == full["reasoning_content"]
    assert json.loads(arguments) == json.loads(full["tool_calls"][0]["function"]["arguments"])


def test_cancel_by_closing_the_stream_keeps_the_session_usable(model):
    session = model.session(512)
    stream = session.chat(QUESTION, tools=TOOLS, stream=True, temperature=0)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    again = session.chat(QUESTION, tools=TOOLS, temperature=0)
    fresh = model.session(512).chat(QUESTION, tools=TOOLS, temperature=0)
    assert again["choices"][0]["message"]["reasoning_content"] == fresh["choices"][0]["message"]["reasoning_content"]


def test_seeded_sampling_is_reproducible(model):
    a = model.session(256).chat(QUESTION, seed=11, temperature=1.0, max_tokens=12)
    b = model.session(256).chat(QUESTION, seed=11, temperature=1.0, max_tokens=12)
    assert a["choices"][0]["message"] == b["choices"][0]["message"]
    assert a["choices"][0]["finish_reason"] in ("length", "stop")


def test_bad_requests_raise_and_leave_the_session_unharmed(model):
    session = model.session(64)
    with pytest.raises(glm.InvalidArgumentError):
        session.chat(QUESTION, temperature="hot")
    with pytest.raises(glm.InvalidArgumentError):
        session.chat(QUESTION, tools=[{"type": "function", "function": {"name": "f", "parameters": 3}}])
    with pytest.raises(glm.ContextFullError):
        session.chat([{"role": "user", "content": "word " * 200}])
    ok = session.chat(QUESTION, temperature=0, max_tokens=5)
    assert ok["choices"][0]["finish_reason"] == "length"


def test_parallel_sessions_equal_sequential_runs(model):
    """N threads running N sessions on one model produce exactly what N sequential runs produce."""
    import threading
    prompts = [QUESTION, [{"role": "user", "content": "Hello!"}], [{"role": "user", "content": "What is 2+2?"}]]
    options = dict(temperature=0.8, seed=5, max_tokens=24)
    sequential = [model.session(512).chat(p, tools=TOOLS, **options)["choices"][0]["message"] for p in prompts]
    results = [None] * len(prompts)

    def run(i):
        results[i] = model.session(512).chat(prompts[i], tools=TOOLS, **options)["choices"][0]["message"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == sequential
