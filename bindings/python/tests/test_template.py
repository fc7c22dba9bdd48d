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
