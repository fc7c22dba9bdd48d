"""A bounded load test: 8 concurrent openai clients x 50 requests against `glm serve --parallel 2` on the tiny model.

Every response must equal the one the same request gets alone (greedy decoding: concurrency, queueing and cache
reuse must not change a token), no request may fail, and the server's resident memory must stay flat once warm.
It prints its numbers (requests/s, RSS) for the record; none of them is asserted against a clock.
"""
import threading
import time

import openai

from apps_support import Server, greedy_cases

CLIENTS = 8
REQUESTS_PER_CLIENT = 50
MODEL = "glm-tiny-chat"
CASES = greedy_cases()


def requests_to_send():
    """Chat, tool-calling, multi-turn and text requests, streamed and not."""
    weather = CASES["weather"]["request"]
    mix = []
    for name in ("weather", "weather_answer", "greeting", "no_think", "second_turn"):
        request = {k: v for k, v in CASES[name]["request"].items() if k != "model"}
        mix.append(("chat", name, request))
    mix.append(("text", "raw", {"prompt": CASES["greeting"]["prompt_text"], "temperature": 0, "max_tokens": 40}))
    mix.append(("chat", "weather+seed", {**{k: v for k, v in weather.items() if k != "model"}, "seed": 11}))
    return mix


def call(api, kind, request, stream):
    """The reply reduced to what must not change: text, reasoning, tool calls (name, arguments), finish reason."""
    if kind == "text":
        if not stream:
            r = api.completions.create(model=MODEL, **request)
            return {"text": r.choices[0].text, "finish": r.choices[0].finish_reason}
        text, finish = "", None
        for chunk in api.completions.create(model=MODEL, stream=True, **request):
            for c in chunk.choices:
                text += c.text
                finish = c.finish_reason or finish
        return {"text": text, "finish": finish}
    extra = {k: v for k, v in request.items() if k not in ("messages", "tools", "temperature", "seed")}
    kw = dict(model=MODEL, messages=request["messages"], temperature=request.get("temperature"),
              extra_body=extra)
    if "tools" in request:
        kw["tools"] = request["tools"]
    if "seed" in request:
        kw["seed"] = request["seed"]
    if not stream:
        m = api.chat.completions.create(**kw).choices[0]
        return {"content": m.message.content or "", "reasoning": m.message.model_extra.get("reasoning_content") or "",
                "calls": [(c.function.name, c.function.arguments) for c in m.message.tool_calls or []],
                "finish": m.finish_reason}
    content, reasoning, calls, finish = "", "", [], None
    for chunk in api.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            content += c.delta.content or ""
            reasoning += (c.delta.model_extra or {}).get("reasoning_content") or ""
            for t in c.delta.tool_calls or []:
                if t.id:
                    calls.append([t.function.name, ""])
                if t.function and t.function.arguments:
                    calls[t.index][1] += t.function.arguments
            finish = c.finish_reason or finish
    return {"content": content, "reasoning": reasoning, "calls": [tuple(c) for c in calls], "finish": finish}


def test_eight_clients_fifty_requests_each(glm_binary):
    server = Server("--parallel", "2", "--queue", "64", "--context", "1024")
    try:
        mix = requests_to_send()
        api = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)
        # What each request gives alone, streamed and not (they must agree with each other too).
        expected = {}
        for kind, name, request in mix:
            alone = call(api, kind, request, stream=False)
            assert call(api, kind, request, stream=True) == alone, name
            expected[name] = alone
        assert expected["weather"]["calls"] == [("get_weather", '{"city": "Paris"}')]
        assert expected["weather_answer"]["content"] == "It is sunny in Paris, 18 degrees."

        failures, done = [], [0]
        lock = threading.Lock()
        rss = []

        def client(index):
            own = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)
            for i in range(REQUESTS_PER_CLIENT):
                kind, name, request = mix[(index + i) % len(mix)]
                try:
                    got = call(own, kind, request, stream=(index + i) % 2 == 0)
                    if got != expected[name]:
                        failures.append((name, got, expected[name]))
                except Exception as error:  # noqa: BLE001 (recorded, then asserted empty)
                    failures.append((name, repr(error)))
                with lock:
                    done[0] += 1
                    if done[0] % 40 == 0:
                        rss.append(server.rss_bytes())

        start = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
        elapsed = time.monotonic() - start
        assert not any(t.is_alive() for t in threads), "clients still running"
        assert failures == []
        assert done[0] == CLIENTS * REQUESTS_PER_CLIENT
        health = server.health()
        assert health["requests"]["failed"] == 0 and health["requests"]["rejected"] == 0
        # Flat: after the first 80 requests (caches, allocator pools and thread stacks in place), the resident set
        # grows by less than 8 MiB over the remaining 320.
        warm, last = rss[1], rss[-1]
        print("\nload: %d requests in %.1f s (%.1f/s), %d prompt tokens (%d cached), %d completion tokens; "
              "RSS MiB every 40 requests: %s" % (
                  done[0], elapsed, done[0] / elapsed, health["tokens"]["prompt"], health["tokens"]["cached"],
                  health["tokens"]["completion"], [round(r / 2**20, 1) for r in rss]))
        assert last - warm < 8 << 20, [r >> 20 for r in rss]
    finally:
        assert server.stop() == 0
