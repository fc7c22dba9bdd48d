"""`glm serve` with real clients: the official `openai` package and plain HTTP, on the tiny demo model.

Expected replies come from transformers (greedy.json, made by tools/make_demo_model.py), from the Python binding
calling glm_chat_complete directly (the server must add nothing to libglm's stream), and from OpenAI's API shape.
"""
import json
import socket
import sys
import threading

import openai
import pytest

from apps_support import ROOT, TINY, Server, greedy_cases, jsonl, run_glm, wait_for

sys.path.insert(0, str(ROOT / "bindings" / "python"))
import glm  # noqa: E402

MODEL = "glm-tiny-chat"
CASES = greedy_cases()
WEATHER = CASES["weather"]["request"]
TOOLS = WEATHER["tools"]
# Ban the eos ids: generation then runs to max_tokens (long requests for the cancel, queue and timeout tests).
NO_EOS = {str(i): -100 for i in json.loads((TINY / "generation_config.json").read_text())["eos_token_id"]}


def client(server, **kw):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, **kw)


def without_identity(chunk):
    """A chunk without what differs between two runs of one request: id, created, and the cached prompt tokens
    (they depend on what the session ran before)."""
    chunk = {k: v for k, v in chunk.items() if k not in ("id", "created")}
    if "usage" in chunk:
        chunk["usage"] = {k: v for k, v in chunk["usage"].items() if k != "prompt_tokens_details"}
    return chunk


def test_models_and_health(server):
    models = client(server).models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].owned_by == "libglm"
    status, health = server.request("GET", "/health")
    assert status == 200 and health["status"] == "ok"
    assert health["slots"]["total"] == 2
    status, one = server.request("GET", "/v1/models/" + MODEL)
    assert status == 200 and one["id"] == MODEL


def test_chat_calls_the_tool_as_transformers_does(server):
    reply = client(server).chat.completions.create(model=MODEL, messages=WEATHER["messages"], tools=TOOLS,
                                                   temperature=0)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    # transformers' greedy text: "<reasoning></think><tool_call>get_weather<arg_key>city</arg_key>..."
    reasoning = CASES["weather"]["completion_text"].split("</think>")[0]
    assert choice.message.model_extra["reasoning_content"] == reasoning
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert reply.usage.prompt_tokens == len(CASES["weather"]["prompt_ids"])
    assert reply.usage.completion_tokens == len(CASES["weather"]["completion_ids"])
    # tool_choice "none": the same generation, no calls returned (vLLM drops the call markup from the content).
    none = client(server).chat.completions.create(model=MODEL, messages=WEATHER["messages"], tools=TOOLS,
                                                  temperature=0, tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and not none.choices[0].message.tool_calls
    assert "<tool_call>" not in (none.choices[0].message.content or "")


def test_streamed_tool_loop_reuses_the_previous_turn(server):
    """examples/tool_calling.py's loop through the openai client, streaming with include_usage."""
    api = client(server)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    usages, finishes = [], []
    for _ in range(4):
        message = {"role": "assistant", "content": "", "reasoning_content": "", "tool_calls": []}
        finish, usage = None, None
        for chunk in api.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}):
            if chunk.usage:
                assert chunk.choices == []
                usage = chunk.usage
            for choice in chunk.choices:
                delta = choice.delta
                message["content"] += delta.content or ""
                message["reasoning_content"] += (delta.model_extra or {}).get("reasoning_content") or ""
                for call in delta.tool_calls or []:
                    if call.id:
                        message["tool_calls"].append({"id": call.id, "type": "function",
                                                      "function": {"name": call.function.name, "arguments": ""}})
                    if call.function and call.function.arguments:
                        message["tool_calls"][call.index]["function"]["arguments"] += call.function.arguments
                finish = choice.finish_reason or finish
        usages.append(usage)
        finishes.append(finish)
        messages.append(message)
        if finish != "tool_calls":
            break
        for call in message["tool_calls"]:
            assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
            messages.append({"role": "tool", "tool_call_id": call["id"],
                             "content": json.dumps({"city": "Paris", "temperature": 18, "condition": "sunny"})})
    assert finishes == ["tool_calls", "stop"]
    answer = CASES["weather_answer"]["completion_text"]
    assert messages[-1]["content"] + "<|user|>" == answer.split("</think>")[1]
    # The second turn went to the slot holding the first: all of turn one is reused but the eos token, which was
    # never evaluated (the template writes <|observation|> again).
    first, second = usages
    assert second.prompt_tokens_details.cached_tokens == first.prompt_tokens + first.completion_tokens - 1
    assert second.prompt_tokens == len(CASES["weather_answer"]["prompt_ids"])


def test_another_conversation_leaves_a_cached_turn_alone_while_a_colder_slot_is_idle(glm_binary):
    """Two slots. A conversation's first turn runs; another client's request shares only the template's first
    tokens with it, so it goes to the unused slot rather than overwrite that turn's cache; the conversation's next
    turn then finds its previous prompt cached."""
    s = Server("--parallel", "2", "--context", "2048")
    try:
        status, first = s.request("POST", "/v1/chat/completions", {"messages": WEATHER["messages"], "tools": TOOLS,
                                                                   "temperature": 0})
        assert status == 200 and first["choices"][0]["finish_reason"] == "tool_calls"
        status, other = s.request("POST", "/v1/chat/completions",
                                  {"messages": [{"role": "user", "content": "Hello"}], "temperature": 0,
                                   "max_tokens": 8})
        assert status == 200 and other["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
        message = first["choices"][0]["message"]
        messages = WEATHER["messages"] + [message] + [
            {"role": "tool", "tool_call_id": call["id"],
             "content": json.dumps({"city": "Paris", "temperature": 18, "condition": "sunny"})}
            for call in message["tool_calls"]]
        status, second = s.request("POST", "/v1/chat/completions", {"messages": messages, "tools": TOOLS,
                                                                    "temperature": 0})
        assert status == 200
        assert second["usage"]["prompt_tokens_details"]["cached_tokens"] >= first["usage"]["prompt_tokens"]
    finally:
        assert s.stop() == 0


def test_stream_chunks_are_libglms_events(server):
    """The server sends glm_chat_complete's chunks as they are: compare with the Python binding's stream."""
    request = dict(messages=WEATHER["messages"], tools=TOOLS, temperature=0, seed=5,
                   stream_options={"include_usage": True})
    session = glm.Model(TINY).session(2048)
    expected = [without_identity(c) for c in session.chat(stream=True, **request)]
    api = client(server)
    got = []
    with api.chat.completions.with_streaming_response.create(model=MODEL, stream=True, **request) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                got.append(without_identity(json.loads(line[len("data: "):])))
            elif line:
                assert line == "data: [DONE]"
    assert got == expected
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "usage" in got[-1] and got[-1]["choices"] == []


def test_text_completions_are_raw(server):
    case = CASES["weather"]
    expected = case["completion_text"][: -len("<|observation|>")]
    reply = client(server).completions.create(model=MODEL, prompt=case["prompt_text"], temperature=0, max_tokens=200)
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.choices[0].text == expected
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == len(case["prompt_ids"])
    streamed, finish, usage = "", None, None
    for chunk in client(server).completions.create(model=MODEL, prompt=case["prompt_text"], temperature=0,
                                                   max_tokens=200, stream=True,
                                                   stream_options={"include_usage": True}):
        for choice in chunk.choices:
            streamed += choice.text
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert streamed == expected and finish == "stop"
    assert usage.completion_tokens == reply.usage.completion_tokens
    # OpenAI's default for text completions is 16 tokens.
    short = client(server).completions.create(model=MODEL, prompt="Hello", extra_body={"logit_bias": NO_EOS})
    assert short.usage.completion_tokens == 16 and short.choices[0].finish_reason == "length"


@pytest.mark.parametrize("name", ["greeting", "no_think", "second_turn"])
def test_chat_replies_equal_transformers(server, name):
    case = CASES[name]
    request = case["request"]
    extra = {k: v for k, v in request.items() if k not in ("model", "messages", "temperature")}
    reply = client(server).chat.completions.create(model=MODEL, messages=request["messages"], temperature=0,
                                                   extra_body=extra)
    text = case["completion_text"].removesuffix("<|user|>")
    reasoning, _, content = text.rpartition("</think>")
    message = reply.choices[0].message
    assert message.content == content.strip()
    assert (message.model_extra.get("reasoning_content") or "") == reasoning.strip()
    assert reply.usage.prompt_tokens == len(case["prompt_ids"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_chat_replies_are_the_parsed_raw_output(server, tmp_path, name):
    """The server's chat path parses with the parsers `glm parse` exposes (held to vLLM's on every shared case in
    test_cli.py): the same prompt, generated raw through /v1/completions and given to `glm parse`, is the message
    /v1/chat/completions returns."""
    case = CASES[name]
    request = {k: v for k, v in case["request"].items() if k != "model"}
    status, chat = server.request("POST", "/v1/chat/completions", dict(request, max_tokens=200))
    assert status == 200
    status, raw = server.request("POST", "/v1/completions", {"prompt": case["prompt_text"], "temperature": 0,
                                                             "max_tokens": 200})
    assert status == 200 and raw["usage"]["completion_tokens"] == chat["usage"]["completion_tokens"]
    args = ["parse"]
    if request.get("tools"):
        (tmp_path / "tools.json").write_text(json.dumps(request["tools"]))
        args += ["--tools", tmp_path / "tools.json"]
    if not case["prompt_text"].endswith("<think>"):
        args.append("--no-thinking")
    parsed = run_glm(*args, input=raw["choices"][0]["text"])
    assert parsed.returncode == 0, parsed.stderr
    parsed = json.loads(parsed.stdout)
    message = chat["choices"][0]["message"]
    for key in ("role", "content", "reasoning_content"):
        assert message.get(key) == parsed.get(key), key
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls") or []] \
        == [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in parsed.get("tool_calls") or []]


def error_of(excinfo):
    body = excinfo.value.body
    assert set(body) == {"message", "type", "param", "code"}, body
    return body


def test_bad_requests_get_openai_errors(server):
    api = client(server)
    with pytest.raises(openai.BadRequestError) as e:
        api.chat.completions.create(model=MODEL, messages=[])
    assert error_of(e)["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as e:
        api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                    extra_body={"temperature": "hot"})
    assert error_of(e)["param"] == "temperature"
    with pytest.raises(openai.NotFoundError) as e:
        api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert error_of(e)["code"] == "model_not_found"
    # tool_choice "required" is enforced by constrained decoding: even "hi" gets a tool call.
    forced = api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=TOOLS,
                                         tool_choice="required", max_tokens=200)
    assert forced.choices[0].message.tool_calls, forced
    with pytest.raises(openai.BadRequestError) as e:
        api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], n=2)
    assert "n" in error_of(e)["message"]
    with pytest.raises(openai.BadRequestError) as e:
        api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert error_of(e)["param"] == "logprobs"
    with pytest.raises(openai.BadRequestError) as e:
        api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 5000}])
    assert error_of(e)["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10**6)
    assert error_of(e)["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as e:
        api.completions.create(model=MODEL, prompt="x", echo=True)
    assert error_of(e)["param"] == "echo"
    # A streamed request that libglm refuses is an HTTP error too, not an event stream.
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model=MODEL, messages=[{"content": "no role"}], stream=True)


def test_malformed_http_never_stops_the_server(server):
    status, body = server.request("POST", "/v1/chat/completions", raw=b'{"messages": [')
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, body = server.request("POST", "/v1/chat/completions", raw=b"[1, 2]")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, body = server.request("POST", "/v1/chat/completions", raw=b"\xff\xfe{}")
    assert status == 400
    status, body = server.request("GET", "/v1/nothing")
    assert status == 404 and body["error"]["message"].startswith("no route")
    status, body = server.request("POST", "/v1/chat/completions", raw=b"{" * 100000 + b"}" * 100000)
    assert status == 400
    status, body = server.request("POST", "/v1/chat/completions", raw=b" " * (9 << 20))
    assert status == 413 and "error" in body
    for garbage in (b"\x00\x01\x02 garbage\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                    b"POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(garbage)
            try:
                s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                pass
    assert server.health()["status"] == "ok"


def test_tokenize_and_detokenize(server):
    case = CASES["weather"]
    status, body = server.request("POST", "/tokenize", {"model": MODEL, "prompt": case["prompt_text"]})
    assert status == 200 and body["tokens"] == case["prompt_ids"] and body["count"] == len(case["prompt_ids"])
    assert body["max_model_len"] == 2048
    # The chat form renders as /v1/chat/completions does: transformers' prompt ids for the same request.
    status, body = server.request("POST", "/tokenize", {"messages": WEATHER["messages"], "tools": TOOLS,
                                                        "return_token_strs": True})
    assert status == 200 and body["tokens"] == case["prompt_ids"]
    assert "".join(body["token_strs"]) == case["prompt_text"]
    status, body = server.request("POST", "/detokenize", {"tokens": case["prompt_ids"]})
    assert status == 200 and body["prompt"] == case["prompt_text"]
    status, body = server.request("POST", "/detokenize", {"tokens": [10**9]})
    assert status == 400
    status, body = server.request("POST", "/detokenize", {"tokens": ["a"]})
    assert status == 400 and body["error"]["param"] == "tokens"


def test_request_json_reaches_libglm_as_sent(server):
    """The server reads and rewrites request bodies itself (model, max_tokens): escapes, non-ASCII text and numbers
    must reach libglm unchanged."""
    text = "caf\u00e9 \U0001F600 \"quoted\" back\\slash\ttab\nline \u0001"
    raw = json.dumps({"prompt": text}, ensure_ascii=True).encode()  # \ud83d\ude00 surrogate pairs on the wire
    status, body = server.request("POST", "/tokenize", raw=raw)
    assert status == 200
    status, decoded = server.request("POST", "/detokenize", {"tokens": body["tokens"]})
    assert decoded["prompt"] == text
    # A seed beyond 64 bits keeps its digits: libglm refuses it by value, naming the field.
    status, body = server.request("POST", "/v1/chat/completions",
                                  raw=b'{"messages": [{"role": "user", "content": "Hi"}], "seed": 123456789012345678901234}')
    assert status == 400 and body["error"]["param"] == "seed" and "123456789012345678901234" in body["error"]["message"]
    # 1e2 is a number (temperature 100 is allowed), 0.10 stays 0.10.
    status, body = server.request("POST", "/v1/chat/completions",
                                  raw=b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": 1e2, '
                                      b'"top_p": 0.10, "max_tokens": 2}')
    assert status == 200 and body["usage"]["completion_tokens"] <= 2


TEMPLATE_CASES = [c for c in jsonl("templates", "glm47_cases.jsonl") if c.get("expected") is not None]


def test_the_chat_path_renders_transformers_prompts(server):
    """/tokenize with a chat renders it as /v1/chat/completions does; its tokens, decoded, are transformers' render
    of every GLM-4.7 template case (the tiny model's chat_template.jinja is the published GLM-4.7 file)."""
    for case in TEMPLATE_CASES:
        request = {"messages": case["messages"], "chat_template_kwargs": case["kwargs"],
                   "add_generation_prompt": case["add_generation_prompt"]}
        if case["tools"] is not None:
            request["tools"] = case["tools"]
        status, body = server.request("POST", "/tokenize", request)
        assert status == 200, (case["name"], body)
        status, text = server.request("POST", "/detokenize", {"tokens": body["tokens"]})
        assert status == 200 and text["prompt"] == case["expected"], case["name"]


def sse_lines(sock):
    """Reads an HTTP response's head and yields its lines (enough for a chunked SSE stream)."""
    buffer = b""
    while True:
        data = sock.recv(4096)
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode(errors="replace").strip()


def start_long_stream(server, max_tokens=2000):
    """A streamed request that generates until max_tokens, on a raw socket the test can close."""
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Tell me a story"}], "stream": True,
                       "max_tokens": max_tokens, "temperature": 1.0, "seed": 3, "logit_bias": NO_EOS}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    lines = sse_lines(sock)
    events = 0
    for line in lines:
        if line.startswith("data: {"):
            events += 1
            if events == 3:
                break
    assert events == 3
    return sock


def test_a_client_that_disconnects_cancels_its_request(server):
    before = server.health()["requests"]["cancelled"]
    sock = start_long_stream(server)
    sock.close()
    wait_for(lambda: server.health()["requests"]["cancelled"] == before + 1, what="the cancel")
    health = server.health()
    assert health["slots"]["busy"] == 0
    # The slot is usable again.
    reply = client(server).chat.completions.create(model=MODEL, messages=WEATHER["messages"], tools=TOOLS,
                                                   temperature=0)
    assert reply.choices[0].finish_reason == "tool_calls"


def send_request(server, body):
    """Sends a chat request on a raw socket the test can close without reading the reply."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(data) + data)
    return sock


def test_a_non_streaming_client_that_disconnects_frees_its_slot_and_queue_place(glm_binary):
    """Nothing is written to a non-streamed request's client until generation ends, so only the connection tells
    that it left: the server watches it. One slot; a request generating up to 16000 tokens (seconds on the tiny
    model) and a second one queued behind it. The queued client leaves: its place is freed while the first still
    generates. The first client leaves: generation stops (cancelled, not completed, far fewer tokens than asked)
    and the slot serves the next request."""
    s = Server("--parallel", "1", "--queue", "4", "--context", "16384")
    try:
        long = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 16000,
                "temperature": 1.0, "seed": 3, "logit_bias": NO_EOS}
        first = send_request(s, long)
        wait_for(lambda: s.health()["slots"]["busy"] == 1, what="the first request to run")
        second = send_request(s, long)
        wait_for(lambda: s.health()["queue"]["length"] == 1, what="the second request to queue")
        second.close()
        wait_for(lambda: s.health()["queue"]["length"] == 0, what="the queued request to leave")
        health = s.health()
        assert health["slots"]["busy"] == 1 and health["requests"]["cancelled"] == 1, health
        first.close()
        wait_for(lambda: s.health()["slots"]["busy"] == 0, what="the slot to free")
        health = s.health()
        assert health["requests"]["cancelled"] == 2 and health["requests"]["completed"] == 0, health
        assert 0 < health["tokens"]["completion"] < 16000, health
        status, body = s.request("POST", "/v1/chat/completions", {"messages": WEATHER["messages"], "tools": TOOLS,
                                                                  "temperature": 0})
        assert status == 200 and body["choices"][0]["finish_reason"] == "tool_calls"
        assert s.health()["requests"]["completed"] == 1
    finally:
        assert s.stop() == 0


def test_requests_beyond_the_queue_get_503_and_slow_ones_time_out(glm_binary):
    """One slot and a queue of one: of 8 requests released together, each generating 2000 tokens, one runs, one
    waits, and those that arrive while both places are taken get 503 at once. (Each takes a few hundred ms alone,
    so their arrivals would have to be spread wider than that for none to be refused.)"""
    s = Server("--parallel", "1", "--queue", "1", "--context", "2048")
    try:
        barrier = threading.Barrier(8)
        results = []

        def one():
            barrier.wait()
            results.append(s.exchange("POST", "/v1/chat/completions",
                                      {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                                       "max_tokens": 2000, "logit_bias": NO_EOS}))

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        refused = [(body, fields) for status, body, fields in results if status == 503]
        served = [body for status, body, _ in results if status == 200]
        assert len(refused) + len(served) == 8 and 1 <= len(refused) <= 6, [r[:2] for r in results]
        for body, fields in refused:
            assert body["error"]["code"] == "server_busy" and body["error"]["type"] == "server_error"
            assert fields["Retry-After"] == "1"  # when to come back
        assert all(b["choices"][0]["finish_reason"] == "length" and b["usage"]["completion_tokens"] == 2000
                   for b in served)
        assert s.health()["requests"]["rejected"] == len(refused)
    finally:
        assert s.stop() == 0
    # A request that generates longer than --timeout is stopped: 504 with OpenAI's error shape.
    s = Server("--timeout", "0.05", "--context", "2048")
    try:
        status, body = s.request("POST", "/v1/chat/completions",
                                 {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1900,
                                  "logit_bias": NO_EOS})
        assert status == 504 and body["error"]["code"] == "timeout"
        assert s.health()["requests"]["timed_out"] == 1
    finally:
        assert s.stop() == 0
