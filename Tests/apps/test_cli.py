"""The `glm` command line: every subcommand on the tiny demo model, its JSON output, its errors and exit codes.

The prompts `glm render` writes are compared with transformers' renders (Tests/Fixtures/templates), and the
messages `glm parse` returns with vLLM 0.33's parser results (Tests/Fixtures/parsers): the same template and parsers
serve /v1/chat/completions (test_server.py checks that path against the same references).
"""
import hashlib
import json
import socket

import pytest

from apps_support import FIXTURES, TINY, greedy_cases, jsonl, run_glm

CASES = greedy_cases()
TEMPLATE_CASES = [c for c in jsonl("templates", "glm47_cases.jsonl") if c.get("expected") is not None]
PARSER_CASES = jsonl("parsers", "parser_cases.jsonl")
DEVIATIONS = json.loads((FIXTURES / "parsers" / "libglm_deviations.json").read_text())["cases"]


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_help_lists_every_command(glm_binary):
    out = ok(run_glm("--help"))
    for command in ("chat", "complete", "info", "bench", "tokenize", "detokenize", "render", "parse", "serve"):
        assert command in out
    assert "quantize" in out
    assert ok(run_glm("--version")).startswith("glm ")


def test_quantize(glm_binary, tmp_path):
    """`glm quantize` writes llama-quantize's bytes (digest from tools/make_gguf_quantize_models.py), with a
    progress bar on stderr; bad type and missing source are refused with the documented exit codes."""
    models = FIXTURES / "models" / "glm-tiny-gguf"
    expected = json.loads((models / "llama-quantize.json").read_text())["air-bf16.gguf"]["Q4_K_M"]
    dst = tmp_path / "air-q4_k_m.gguf"
    result = run_glm("quantize", models / "air-bf16.gguf", dst, "q4_k_m", "--threads", "2")
    ok(result)
    assert "100.0%" in result.stderr and "wrote" in result.stderr
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == expected["sha256"]
    bad = run_glm("quantize", models / "air-bf16.gguf", tmp_path / "x.gguf", "Q9_X")
    assert bad.returncode == 65 and "Q9_X" in bad.stderr
    missing = run_glm("quantize", tmp_path / "missing.gguf", tmp_path / "x.gguf", "Q8_0")
    assert missing.returncode == 66 and "missing.gguf" in missing.stderr
    assert not (tmp_path / "x.gguf").exists()


def test_info(glm_binary):
    info = json.loads(ok(run_glm("info", TINY, "--json", "-q")))
    config = json.loads((TINY / "config.json").read_text())
    assert info["config"]["num_hidden_layers"] == config["num_hidden_layers"]
    # f32 keys and values: layers x 2 x kv heads x head_dim x 4 bytes (the tiny model has no MTP layer).
    assert info["kv_bytes_per_token"]["f32"] == 2 * 2 * 2 * 16 * 4   # layers × (K, V) × KV heads × head_dim × 4 B
    assert info["kv_bytes_per_token"]["f16"] == info["kv_cache"]["bytes_per_token"] == 2 * 2 * 2 * 16 * 2
    assert info["kv_cache"]["mtp_layers"] == 0
    assert info["kernels"] in ("avx2", "avx512")
    assert info["bf16_inputs"] == "f32"     # a checkpoint directory: f32 inputs unless told otherwise
    assert json.loads(ok(run_glm("info", TINY, "--json", "-q", "--bf16-inputs", "bf16")))["bf16_inputs"] == "bf16"
    bad = run_glm("info", TINY, "--bf16-inputs", "half")
    assert bad.returncode != 0 and "--bf16-inputs" in bad.stderr
    # --populate: every page of the files mapped at load (glm_model_params.populate); the same model
    populated = json.loads(ok(run_glm("info", TINY, "--json", "-q", "--populate")))
    assert populated["parameter_count"] == info["parameter_count"]
    assert info["parameter_count"] > 0 and info["bytes_mapped"] > 0
    text = ok(run_glm("info", TINY, "-q"))
    assert "256 B per token (f16" in text and "Glm4MoeForCausalLM" in text
    system = json.loads(ok(run_glm("info", "--system", "--json")))
    assert {"version", "api_version", "cpu", "kernels"} <= set(system)
    assert "kernels" in ok(run_glm("info", "--system"))


def test_bench(glm_binary):
    lines = ok(run_glm("bench", TINY, "-p", "32", "-n", "8", "-r", "2", "--json", "-q")).splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["test"] for r in rows] == ["pp32", "tg8"]
    assert all(r["tokens_per_second"] > 0 and len(r["samples"]) == 2 for r in rows)
    table = ok(run_glm("bench", TINY, "-p", "16", "-n", "4", "-r", "1", "-q"))
    assert "| pp16 |" in table.replace("  ", " ") or "pp16" in table


def test_tokenize_gives_transformers_ids(glm_binary):
    case = CASES["weather"]
    ids = json.loads(ok(run_glm("tokenize", TINY, case["prompt_text"], "--json")))["tokens"]
    assert ids == case["prompt_ids"]
    assert ok(run_glm("tokenize", TINY, input=case["prompt_text"])).split() == [str(i) for i in ids]
    text = json.loads(ok(run_glm("detokenize", TINY, *ids, "--json")))["text"]
    assert text == case["prompt_text"]
    pieces = json.loads(ok(run_glm("tokenize", TINY, "Hello world", "--json", "--pieces")))["pieces"]
    assert "".join(pieces) == "Hello world"


@pytest.mark.parametrize("case", TEMPLATE_CASES, ids=[c["name"] for c in TEMPLATE_CASES])
def test_render_equals_transformers(glm_binary, tmp_path, case):
    request = {"messages": case["messages"], "chat_template_kwargs": case["kwargs"],
               "add_generation_prompt": case["add_generation_prompt"]}
    if case["tools"] is not None:
        request["tools"] = case["tools"]
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    # GLM-4.7's built-in template and the tiny model's copy of the published file.
    assert ok(run_glm("render", "--messages", path)) == case["expected"]
    assert ok(run_glm("render", TINY, "--messages", path)) == case["expected"]


def test_render_decodes_string_arguments_as_the_chat_path_does(glm_binary, tmp_path):
    """OpenAI clients send tool-call arguments as JSON text; transformers' template needs an object (its fixture
    case fails), and vLLM and libglm decode it first. The prompt is then the one for the object."""
    [case] = [c for c in jsonl("templates", "glm47_cases.jsonl") if c["name"] == "string_arguments_error"]
    as_text = tmp_path / "text.json"
    as_text.write_text(json.dumps({"messages": case["messages"], "add_generation_prompt": False}))
    messages = json.loads(json.dumps(case["messages"]))
    call = messages[1]["tool_calls"][0]["function"]
    call["arguments"] = json.loads(call["arguments"])
    as_object = tmp_path / "object.json"
    as_object.write_text(json.dumps({"messages": messages, "add_generation_prompt": False}))
    rendered = ok(run_glm("render", "--messages", as_text))
    assert rendered == ok(run_glm("render", "--messages", as_object))
    assert "<arg_key>city</arg_key><arg_value>Paris</arg_value>" in rendered


def fixture_shape(message):
    return {"reasoning": message["reasoning_content"], "content": message["content"],
            "tool_calls": [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                           for c in message["tool_calls"]]}


@pytest.mark.parametrize("case", PARSER_CASES, ids=[c["name"] for c in PARSER_CASES])
def test_parse_equals_vllm(glm_binary, tmp_path, case):
    args = ["parse", "--seed", "7"]
    if case["tools"] is not None:
        tools = tmp_path / "tools.json"
        tools.write_text(json.dumps(case["tools"]))
        args += ["--tools", tools]
    if not case["prompt_tail"].endswith("<think>"):
        args.append("--no-thinking")
    message = json.loads(ok(run_glm(*args, input=case["model_output"])))
    assert message["role"] == "assistant"
    expected = DEVIATIONS.get(case["name"], {}).get("batch", case["expected"])
    assert fixture_shape(message) == expected


def test_complete_raw_prompt_and_chat(glm_binary, tmp_path):
    case = CASES["weather"]
    out = ok(run_glm("complete", TINY, case["prompt_text"], "--temperature", "0", "-q"))
    assert out == case["completion_text"][: -len("<|observation|>")] + "\n"
    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps(case["request"]["messages"]))
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(case["request"]["tools"]))
    response = json.loads(ok(run_glm("complete", TINY, "--messages", messages, "--tools", tools, "--temperature", "0",
                                     "--json", "-q")))
    [call] = response["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    streamed = run_glm("complete", TINY, "--messages", messages, "--tools", tools, "--temperature", "0")
    assert "[tool call] get_weather {\"city\": \"Paris\"}" in ok(streamed)
    assert "tool_calls" in streamed.stderr and "tokens/s" in streamed.stderr


def test_chat_session_with_tools(glm_binary, tmp_path):
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(CASES["weather"]["request"]["tools"]))
    result = '{"city": "Paris", "temperature": 18, "condition": "sunny"}'
    run = run_glm("chat", TINY, "--tools", tools, "--temperature", "0", "-q",
                  input="What is the weather in Paris?\n" + result + "\n/exit\n")
    out = ok(run)
    assert "[tool call] get_weather {\"city\": \"Paris\"}" in out
    assert out.rstrip().endswith("It is sunny in Paris, 18 degrees.")
    # Token counts after every reply; the answer to the tool result reused the first reply's cache.
    usage = [line for line in run.stderr.splitlines() if "prompt tokens" in line]
    assert len(usage) == 2 and "(0 cached)" in usage[0] and "(0 cached)" not in usage[1]
    assert all("tokens/s" in line for line in usage)


def test_a_chat_turn_that_fails_is_taken_back_whole(glm_binary, tmp_path):
    """The tool's result is too long for the context, so the turn's second round fails: the whole turn (question,
    tool call, result) leaves the conversation, and the next message is answered as in a new chat."""
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(CASES["weather"]["request"]["tools"]))
    chat = ["chat", TINY, "--tools", tools, "--temperature", "0", "--context", "512", "-q"]
    run = run_glm(*chat, input="What is the weather in Paris?\n" + "sunny " * 600 + "\nHello!\n")
    assert run.returncode == 0, run.stderr
    assert "[tool call] get_weather" in run.stdout and "GLM_ERR_CONTEXT_FULL" in run.stderr
    alone = run_glm(*chat, input="Hello!\n")
    usage = [line for line in run.stderr.splitlines() if "prompt tokens" in line]
    expected = [line for line in alone.stderr.splitlines() if "prompt tokens" in line]
    assert len(usage) == 2 and len(expected) == 1
    assert usage[1].split(" prompt tokens")[0] == expected[0].split(" prompt tokens")[0]


def test_chat_reset_forgets_the_conversation_and_its_cache(glm_binary):
    greeting = CASES["greeting"]["completion_text"].removesuffix("<|user|>").split("</think>")[1]
    run = run_glm("chat", TINY, "--temperature", "0", "-q", input="Hello!\n/reset\nHello!\n")
    out = ok(run)
    assert out.count(greeting) == 2 and "[reset]" in out
    usage = [line for line in run.stderr.splitlines() if "prompt tokens" in line]
    # The same 7-token prompt both times, and nothing cached the second time: the KV cache was cleared too.
    assert usage[0].startswith("[7 prompt tokens (0 cached)") and usage[1].startswith("[7 prompt tokens (0 cached)")


@pytest.mark.parametrize("args, code, words", [
    (["info", "/nonexistent/model", "-q"], 66, "cannot load the model"),
    (["tokenize", "/nonexistent/tokenizer.json", "x"], 66, "GLM_ERR_IO"),
    (["info"], 64, "MODEL"),
    (["bench", str(TINY), "-p", "-1"], 64, "-p"),
    (["detokenize", str(TINY), "12", "abc"], 65, "'abc' is not a token id"),
    (["detokenize", str(TINY), "999999"], 65, "GLM_ERR_INVALID_ARGUMENT"),
    (["parse", "x", "--tool-choice", "required"], 64, "tool-choice"),
    (["complete", str(TINY)], 64, "PROMPT or --messages"),
    (["serve", str(TINY), "--parallel", "0"], 64, "--parallel"),
])
def test_errors_say_what_went_wrong(glm_binary, args, code, words):
    result = run_glm(*args)
    assert result.returncode == code, (result.returncode, result.stderr)
    assert words in result.stderr


def test_bad_input_files(glm_binary, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    result = run_glm("render", "--messages", bad)
    assert result.returncode == 65 and "not valid JSON" in result.stderr
    missing = run_glm("render", "--messages", tmp_path / "missing.json")
    assert missing.returncode == 66 and "cannot open" in missing.stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"messages": "not a list"}')
    result = run_glm("render", "--messages", wrong)
    assert result.returncode == 65 and "glm: error: cannot render the chat" in result.stderr
    other = tmp_path / "llama"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    result = run_glm("info", other, "-q")
    assert result.returncode == 69 and "GLM_ERR_UNSUPPORTED" in result.stderr


def test_serve_on_a_port_in_use_says_so(glm_binary):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_glm("serve", TINY, "--port", taken.getsockname()[1], "-q", timeout=60)
    assert result.returncode == 71 and "Address already in use" in result.stderr


def test_a_model_without_a_template_renders_with_the_built_in_one(glm_binary, tmp_path):
    """As glm_chat_new does: the directory's chat template, else GLM-4.7's built-in one."""
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json"):
        (model / name).symlink_to(TINY / name)
    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps([{"role": "user", "content": "Hello!"}]))
    assert ok(run_glm("render", model, "--messages", messages)) == "[gMASK]<sop><|user|>Hello!<|assistant|><think>"
    assert ok(run_glm("complete", model, "--messages", messages, "--temperature", "0", "-q")).strip() == \
        CASES["greeting"]["completion_text"].removesuffix("<|user|>").split("</think>")[1]
