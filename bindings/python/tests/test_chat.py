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


# What each greedy completion in greedy.json means as an OpenAI message, written by hand from its
# completion_text (the text transformers generated), independently of libglm's parser.
EXPECTED_MESSAGES = {
    "weather": {"reasoning_content": "The user wants the weather in Paris. I will call get_weather.",
                "content": None, "tool_calls": [("get_weather", {"city": "Paris"})]},
    "weather_answer": {"reasoning_content": "The tool says it is sunny and 18 degrees.",
                       "content": "It is sunny in Paris, 18 degrees.", "tool_calls": []},
    "greeting": {"reasoning_content": "The user greets me. I greet back.",
                 "content": "Hello! How can I help you today?", "tool_calls": []},
    "no_think": {"reasoning_content": None, "content": "Hi! Nice to meet you.", "tool_calls": []},
    "second_turn": {"reasoning_content": "Simple arithmetic: 2+2 is 4.", "content": "2+2 equals 4.",
                    "tool_calls": []},
}


def test_greedy_completions_equal_transformers(model):
    tok = model.tokenizer
    assert {case["name"] for case in GREEDY["cases"]} == set(EXPECTED_MESSAGES)
    for case in GREEDY["cases"]:
        request = dict(case["request"])
        request.pop("model", None)
        messages, tools = request.pop("messages"), request.pop("tools", None)
        response = model.session(512).chat(messages, tools=tools, **request)
        # The same tokens as transformers' greedy run, and they decode to its text.
        assert tok.decode(case["completion_ids"]) == case["completion_text"], case["name"]
        completion = [i for i in case["completion_ids"] if i not in GREEDY["eos_token_ids"]]
        assert response["usage"]["completion_tokens"] == len(case["completion_ids"]), case["name"]
        expected = EXPECTED_MESSAGES[case["name"]]
        message = response["choices"][0]["message"]
        assert message["content"] == expected["content"], case["name"]
        assert message["reasoning_content"] == expected["reasoning_content"], case["name"]
        calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"] or []]
        assert calls == expected["tool_calls"], case["name"]
        assert response["choices"][0]["finish_reason"] == ("tool_calls" if calls else "stop")
        assert len(completion) < len(case["completion_ids"])   # each ends at one of the eos ids
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
