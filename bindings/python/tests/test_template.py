"""glm.render_chat byte-exact with transformers' apply_chat_template (committed reference renders)."""
import json

import pytest

import glm
from fixtures import FIXTURES, jsonl

TEMPLATES = FIXTURES / "templates"
GLM47 = jsonl("templates", "glm47_cases.jsonl")
GLM46 = jsonl("templates", "glm46_cases.jsonl")
CHAT = [c for c in jsonl("templates", "chat_cases.jsonl") if "name" in c]
DOCUMENT_CASES = [c for c in jsonl("templates", "documents_cases.jsonl") if "name" in c]


def render(case, template=None):
    return glm.render_chat(case["messages"], case["tools"], template=template,
                           add_generation_prompt=case["add_generation_prompt"], **case["kwargs"])


@pytest.mark.parametrize("case", GLM47, ids=[c["name"] for c in GLM47])
def test_glm47_builtin_template(case):
    if case["expected"] is None:
        with pytest.raises(glm.TemplateError, match="items"):
            render(case)
    else:
        assert render(case) == case["expected"]


@pytest.mark.parametrize("case", GLM46, ids=[c["name"] for c in GLM46])
def test_glm45_46_template(case):
    source = (TEMPLATES / "glm-4.5.jinja").read_text(encoding="utf-8")
    if case["expected"] is None:
        with pytest.raises(glm.TemplateError):
            render(case, source)
    else:
        assert render(case, source) == case["expected"]


def test_builtin_is_the_official_glm47_template():
    source = (TEMPLATES / "glm-4.7.jinja").read_text(encoding="utf-8")
    messages = [{"role": "user", "content": "Hi"}]
    assert glm.render_chat(messages) == glm.render_chat(messages, template=source)


def test_other_real_templates():
    assert len(CHAT) > 300
    failures = []
    by_template = {}
    for case in CHAT:
        tmpl = by_template.get(case["template"])
        if tmpl is None:
            source = (TEMPLATES / "chat" / case["template"]).read_text(encoding="utf-8")
            tmpl = by_template[case["template"]] = glm.ChatTemplate(source, special_tokens=case["special"])
        try:
            got = tmpl.render(case["messages"], case["tools"], add_generation_prompt=case["add_generation_prompt"],
                              now=case["now"], **case["kwargs"])
        except glm.GLMError as error:
            got = error
        expected = case.get("expected")
        if expected is None:
            if not isinstance(got, glm.GLMError):
                failures.append(case["name"])
        elif got != expected:
            failures.append(case["name"])
    assert failures == []


def test_undefined_versus_explicit_none():
    messages = [{"role": "user", "content": "Hi"}]
    assert glm.render_chat(messages).endswith("<|assistant|><think>")
    # transformers: an explicitly passed None is a *defined* falsy variable.
    assert glm.render_chat(messages, enable_thinking=None).endswith("<|assistant|></think>")


@pytest.mark.parametrize("source,error", [
    ("{% for x in range(10**9) %}{{ x }}{% endfor %}", glm.TemplateError),  # jinja2's sandbox MAX_RANGE
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", glm.LimitExceededError),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", glm.GLMError),
    ("{{ " + "(" * 20000 + "1" + ")" * 20000 + " }}", glm.GLMError),
    ("{% if x %}unterminated", glm.TemplateError),
    ("{{ 'a' | no_such_filter }}", glm.TemplateError),
    ("{{ 'x' * 100000000 }}{{ 'x' * 100000000 }}", glm.GLMError),
])
def test_hostile_templates_fail_cleanly(source, error):
    with pytest.raises(error):
        glm.render_chat([{"role": "user", "content": "x"}], template=source)


def test_error_names_line_and_column():
    with pytest.raises(glm.TemplateError, match="line 2"):
        glm.render_chat([{"role": "user", "content": "x"}], template="ok\n{{ messages[0].content.items() }}")


def test_model_directory_template():
    tmpl = glm.ChatTemplate.from_path(FIXTURES / "tokenizers" / "glm-tiny")
    assert tmpl.render([{"role": "user", "content": "Hi"}]) == "[gMASK]<sop><|user|>Hi<|assistant|><think>"
    with pytest.raises(glm.GLMIOError):
        glm.ChatTemplate.from_path(FIXTURES / "models" / "glm47")


def _gguf_with_template(path, template, tokens):
    """A minimal GGUF v3 file with tokenizer metadata and a chat template (no tensors)."""
    import struct

    def string(s):
        data = s.encode("utf-8")
        return struct.pack("<Q", len(data)) + data

    kv = [
        (string("general.architecture") + struct.pack("<I", 8) + string("glm4moe")),
        (string("tokenizer.chat_template") + struct.pack("<I", 8) + string(template)),
        (string("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<IQ", 8, len(tokens))
         + b"".join(string(t) for t in tokens)),
        (string("tokenizer.ggml.bos_token_id") + struct.pack("<I", 4) + struct.pack("<I", 1)),
    ]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv))


def test_template_from_gguf(tmp_path):
    path = tmp_path / "model.gguf"
    _gguf_with_template(path, "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
                        ["<unk>", "<s>", "</s>"])
    tmpl = glm.ChatTemplate.from_path(path)
    assert tmpl.render([{"role": "user", "content": "Hi"}]) == "<s><user>Hi"
    with pytest.raises(glm.GLMIOError, match="chat_template"):
        glm.ChatTemplate.from_path(FIXTURES / "tokenizers" / "ggml-vocab-gpt-2.gguf")


@pytest.mark.parametrize("case", DOCUMENT_CASES, ids=[c["name"] for c in DOCUMENT_CASES])
def test_documents_reach_rag_templates(case):
    source = (TEMPLATES / "chat" / case["template"]).read_text(encoding="utf-8")
    glm_special = case["special"]
    kwargs = dict(tools=case["tools"], documents=case["documents"], now=case["now"],
                  add_generation_prompt=case["add_generation_prompt"])
    if case["expected"] is None:
        with pytest.raises(glm.TemplateError):
            glm.ChatTemplate(source, special_tokens=glm_special).render(case["messages"], **kwargs)
        return
    got = glm.ChatTemplate(source, special_tokens=glm_special).render(case["messages"], **kwargs)
    assert got == case["expected"]
    assert "Louvre" in got
    # render_chat passes them the same way (the template's special tokens aside).
    plain = glm.render_chat(case["messages"], template=source, **kwargs)
    assert "Louvre" in plain


LLAMA = (TEMPLATES / "chat" / "meta-llama-Llama-3.2-3B-Instruct.jinja").read_text(encoding="utf-8")
HI = [{"role": "user", "content": "Hi"}]


def test_the_date_follows_the_given_clock():
    import datetime
    july = glm.render_chat(HI, template=LLAMA, now=1721730030)
    assert "Today Date: 23 Jul 2024\n" in july
    assert glm.render_chat(HI, template=LLAMA, now=1767225599.9) == july.replace("23 Jul 2024", "31 Dec 2025")
    # A naive datetime is taken as UTC wall-clock time; an aware one is converted to UTC.
    assert glm.render_chat(HI, template=LLAMA, now=datetime.datetime(2024, 7, 23, 23, 59)) == july
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    assert glm.render_chat(HI, template=LLAMA, now=datetime.datetime(2024, 7, 24, 1, 0, tzinfo=tokyo)) == july
    assert glm.render_chat(HI, template=LLAMA, now=datetime.date(2024, 7, 23)) == july
    with pytest.raises(glm.InvalidArgumentError, match="now"):
        glm.render_chat(HI, template=LLAMA, now=10**15)
    with pytest.raises(TypeError):
        glm.render_chat(HI, template=LLAMA, now="2024-07-23")


def _render_in_child(env_extra, now=None):
    import json
    import os
    import subprocess
    import sys
    code = ("import glm, json, sys; a = json.loads(sys.argv[1]);"
            "print(json.dumps(glm.render_chat(a['m'], template=a['t'], now=a['now'])))")
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    package = str(TEMPLATES.parents[2] / "bindings" / "python")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package, env.get("PYTHONPATH")) if p)
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", code, json.dumps({"m": HI, "t": LLAMA, "now": now})],
                         env=env, capture_output=True, text=True, timeout=60)
    return out


def test_source_date_epoch_time_zone_and_locale():
    july = glm.render_chat(HI, template=LLAMA, now=1721730030)
    # SOURCE_DATE_EPOCH fixes the clock when the call does not; an explicit now wins over it.
    child = _render_in_child({"SOURCE_DATE_EPOCH": "1721730030", "TZ": "Pacific/Kiritimati", "LC_ALL": "C.UTF-8"})
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == july
    child = _render_in_child({"SOURCE_DATE_EPOCH": "86400", "TZ": "America/Adak"}, now=1721730030)
    assert json.loads(child.stdout) == july
    child = _render_in_child({"SOURCE_DATE_EPOCH": "yesterday"})
    assert child.returncode != 0 and "SOURCE_DATE_EPOCH" in child.stderr


# Templates that touch or build huge values (issue 17). Each must stop with LimitExceededError in a child process
# limited to 2 GiB of address space: not run for hours, not die of MemoryError or a failed allocation.
_BIG = "{% set big = 'x' * 60000000 %}{% for i in range(100000) %}{% set _ = EXPR %}{% endfor %}"
_SHARED = "{% set l = ['x' * 1000000] * 1000000 %}"
BUDGET_CASES = {
    **{name: _BIG.replace("EXPR", expr) for name, expr in [
        ("length", "big|length"), ("replace", "big.replace('x', 'y')"), ("replace_filter", "big|replace('x', 'y')"),
        ("upper", "big|upper"), ("tojson", "big|tojson"), ("equal", "big == big ~ ''"), ("in", "'y' in big"),
        ("split", "big.split('x')"), ("split_whitespace", "big.split()"), ("find", "big.rfind('y')"),
        ("slice", "big[1:]"), ("repr", "[big]|string"), ("title", "big|title")]},
    "list_doubling": "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
    "list_doubling_unrolled": "{% set l = [1] %}" + "{% set l = l + l %}" * 40,
    "dict_growth": "{% set ns = namespace(d={}) %}{% for i in range(100000) %}"
                   "{% set ns.d = dict(ns.d, **{('k' ~ i): i}) %}{% endfor %}",
    "string_times_huge": "{{ 'x' * 100000000000 }}",
    "string_times_in_loop": "{% for i in range(100000) %}{% set s = 'x' * 60000000 %}{% endfor %}",
    "percent_width_huge": "{{ '%100000000000d' % 1 }}",
    "percent_width_in_loop": "{% for i in range(100000) %}{% set s = '%60000000d' % 1 %}{% endfor %}",
    "format_width_in_loop": "{% for i in range(100000) %}{% set s = '{:>60000000}'.format(1) %}{% endfor %}",
    "nested_loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "nested_loops_with_body": "{% for a in range(100000) %}{% for b in range(100000) %}{{ a ~ b if false }}"
                              "{% endfor %}{% endfor %}",
    "shared_tojson": _SHARED + "{{ l|tojson }}",
    "shared_join": _SHARED + "{{ l|join }}",
    "shared_equal": _SHARED + "{{ l == l + [] }}",
}

_BUDGET_CHILD = r'''
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
import glm
for name, source, via_object in json.loads(sys.stdin.read()):
    try:
        if via_object:
            glm.ChatTemplate(source).render([{"role": "user", "content": "x"}])
        else:
            glm.render_chat([{"role": "user", "content": "x"}], template=source)
        result = ["rendered", ""]
    except BaseException as error:
        result = [type(error).__name__, str(error)]
    print(json.dumps([name] + result), flush=True)
'''


def _render_in_limited_child(cases, timeout):
    """Renders (name, source, via ChatTemplate) cases in one child with RLIMIT_AS = 2 GiB; {name: (kind, message)}.
    A case the child did not finish (crash or timeout) is reported as such."""
    import os
    import subprocess
    import sys
    env = dict(os.environ)
    package = str(TEMPLATES.parents[2] / "bindings" / "python")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package, env.get("PYTHONPATH")) if p)
    try:
        child = subprocess.run([sys.executable, "-c", _BUDGET_CHILD], input=json.dumps(cases), env=env,
                               capture_output=True, text=True, timeout=timeout)
        stdout, ended = child.stdout, "exit status %d: %s" % (child.returncode, child.stderr[-500:])
    except subprocess.TimeoutExpired as expired:
        stdout, ended = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or ""), \
            "timed out after %d s" % timeout
    results = {}
    for line in stdout.splitlines():
        name, kind, message = json.loads(line)
        results[name] = (kind, message)
    return {name: results.get(name, ("unfinished", ended)) for name, _, _ in cases}


def test_hostile_templates_stop_at_a_limit_in_bounded_memory():
    assert len(BUDGET_CASES) >= 25
    cases = [(name, source, i % 2 == 1) for i, (name, source) in enumerate(BUDGET_CASES.items())]
    results = _render_in_limited_child(cases, timeout=300)
    failures = {name: result for name, result in results.items()
                if result[0] != "LimitExceededError" or "(RenderLimits." not in result[1]
                or "(template line 1, column " not in result[1]}
    assert failures == {}


def test_long_needles_are_found_in_linear_time():
    # A naive search compares 100001 bytes at each of 10 million places (a trillion steps); these must be quick.
    hay = "{% set h = 'a' * 10000000 %}"
    cases = [("in", hay + "{{ ('a' * 100000 ~ 'b') in h }}", False),
             ("find", hay + "{{ h.find('a' * 100000 ~ 'b') }}", True),
             ("rfind", hay + "{{ h.rfind('b' ~ 'a' * 100000) }}", False),
             ("split", hay + "{{ h.split('a' * 100000 ~ 'b') | length }}", True),
             ("rsplit", hay + "{{ h.rsplit('b' ~ 'a' * 100000, 1) | length }}", False)]
    results = _render_in_limited_child(cases, timeout=120)
    assert results == {name: ("rendered", "") for name, _, _ in cases}
    assert glm.render_chat([{"role": "user", "content": "x"}],
                           template="{% set h = 'a' * 1000 %}{{ h.find('a' * 100 ~ 'b') }}|{{ ('a' * 1000 ~ 'ba').rfind('b' ~ 'a' * 100) }}|"
                                    "{{ ('a' * 100 ~ 'b') in ('a' * 1000 ~ 'b') }}") == "-1|-1|True"


def _long_conversation(message_count, tool_count):
    """The template benchmark's conversation (tools/bench_template.py builds the same)."""
    tools = [{"type": "function", "function": {
        "name": f"tool_{t}", "description": f"Tool number {t}: searches the data set {t} and returns JSON.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": f"What to look up for tool {t}"},
            "limit": {"type": "integer", "minimum": 1, "default": 10},
            "filters": {"type": "array", "items": {"type": "string"}},
            "strict": {"type": "boolean"}}, "required": ["query"]}}} for t in range(tool_count)]
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
    return messages[:message_count], tools


def test_real_templates_fit_the_budget_and_the_error_names_the_limit():
    # GLM-4.7 with 100 messages and 20 tools: jinja2 renders it to 20972 bytes.
    messages, tools = _long_conversation(100, 20)
    assert len(glm.render_chat(messages, tools, add_generation_prompt=True).encode("utf-8")) == 20972
    with pytest.raises(glm.LimitExceededError, match=r"RenderLimits\.maxWorkUnits.*\(template line 2, column 31\)$"):
        glm.render_chat([{"role": "user", "content": "x"}],
                        template="{% set big = 'x' * 60000000 %}\n  {% for i in range(100000) %}{{ big|length }}{% endfor %}")
