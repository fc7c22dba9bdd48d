#!/usr/bin/env python3
"""Benchmark: render a 100-message conversation with 20 tools through the GLM-4.7 chat template, with jinja2
(transformers' environment) and with libglm's Swift engine, in the same run on the same input, and print
both timings and the ratios. Also checks that both outputs are byte-identical.

    swift build -c release --product glm-bench
    python3 tools/bench_template.py .build/release/glm-bench [--messages 100] [--tools 20] [--iterations 200]

The Swift binary is run as `BINARY template --input FILE --iterations N --output FILE`.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import jinja2
import transformers
from transformers.utils.chat_template_utils import (_compile_jinja_template, _normalize_chat_messages,
                                                    render_jinja_template)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "Tests", "Fixtures", "templates", "glm-4.7.jinja")


def conversation(message_count, tool_count):
    tools = []
    for t in range(tool_count):
        tools.append({"type": "function", "function": {
            "name": f"tool_{t}", "description": f"Tool number {t}: searches the data set {t} and returns JSON.",
            "parameters": {"type": "object", "properties": {
                "query": {"type": "string", "description": f"What to look up for tool {t}"},
                "limit": {"type": "integer", "minimum": 1, "default": 10},
                "filters": {"type": "array", "items": {"type": "string"}},
                "strict": {"type": "boolean"}}, "required": ["query"]}}})
    messages = [{"role": "system", "content": "You are a careful assistant. Use the tools when they help."}]
    r = 0
    while len(messages) < message_count:
        tool = r % max(1, tool_count)
        messages.append({"role": "user", "content": f"Question {r}: what does data set {tool} say about item {r * 7}?"})
        messages.append({"role": "assistant", "content": "",
                         "reasoning_content": f"I should call tool_{tool} with a focused query for round {r}.",
                         "tool_calls": [{"type": "function", "function": {"name": f"tool_{tool}", "arguments": {
                             "query": f"item {r * 7}", "limit": 5, "filters": ["recent", "verified"], "strict": True}}}]})
        messages.append({"role": "tool", "content": f'{{"item": {r * 7}, "status": "ok", "score": 0.{r % 10}5}}'})
        messages.append({"role": "assistant", "content": f"Item {r * 7} is fine (score 0.{r % 10}5)."})
        r += 1
    return {"messages": messages[:message_count], "tools": tools, "add_generation_prompt": True}


def time_calls(fn, iterations):
    fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples), statistics.mean(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--tools", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()

    data = conversation(args.messages, args.tools)
    source = open(TEMPLATE, encoding="utf-8").read()
    compiled = _compile_jinja_template(source)
    chat = _normalize_chat_messages(data["messages"])

    def jinja_only():
        return compiled.render(messages=chat, tools=data["tools"], documents=None, add_generation_prompt=True)

    def transformers_full():
        normalized = _normalize_chat_messages(data["messages"])
        return render_jinja_template(conversations=[normalized], tools=data["tools"], chat_template=source,
                                     add_generation_prompt=True)[0][0]

    reference = transformers_full()
    assert reference == jinja_only()
    jinja_median, jinja_mean = time_calls(jinja_only, args.iterations)
    full_median, full_mean = time_calls(transformers_full, args.iterations)

    with tempfile.TemporaryDirectory() as tmp:
        input_path = os.path.join(tmp, "input.json")
        output_path = os.path.join(tmp, "output.txt")
        with open(input_path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        line = subprocess.run([args.binary, "template", "--input", input_path, "--iterations", str(args.iterations),
                               "--output", output_path], capture_output=True, text=True, check=True).stdout
        swift = json.loads(line.strip().splitlines()[-1])
        swift_output = open(output_path, encoding="utf-8").read()

    identical = swift_output == reference
    print(f"input: {args.messages} messages, {args.tools} tools, output {len(reference.encode())} bytes; "
          f"outputs identical: {identical}")
    print(f"jinja2 {jinja2.__version__} template.render (compiled once): median {jinja_median:9.1f} us  mean {jinja_mean:9.1f} us")
    print(f"transformers {transformers.__version__} render_jinja_template:   median {full_median:9.1f} us  mean {full_mean:9.1f} us")
    print(f"libglm Swift ChatTemplate.render:              median {swift['render_us_median']:9.1f} us  mean {swift['render_us_mean']:9.1f} us"
          f"  (template parse: {swift['parse_us_median']:.1f} us, once per template)")
    print(f"speed-up vs jinja2 render: {jinja_median / swift['render_us_median']:.2f}x; "
          f"vs transformers render_jinja_template: {full_median / swift['render_us_median']:.2f}x (medians)")
    if not identical:
        raise SystemExit("outputs differ")


if __name__ == "__main__":
    main()
