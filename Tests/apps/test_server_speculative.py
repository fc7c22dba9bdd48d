"""`glm serve --speculative-tokens k` and the request field "speculative_config": MTP speculative decoding through
the server, on a copy of glm-tiny-chat given an MTP layer (bindings/python/tests/mtp_fixture.py). Replies equal
plain decoding's; usage carries completion_tokens_details."""
import importlib.util
import json

import pytest

import apps_support
from apps_support import ROOT, TINY, Server, run_glm

_spec = importlib.util.spec_from_file_location("libglm_mtp_fixture", ROOT / "bindings" / "python" / "tests" / "mtp_fixture.py")
mtp_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mtp_fixture)

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}], "temperature": 0, "seed": 2,
            "max_tokens": 60, "tools": [{"type": "function", "function": {
                "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                      "required": ["city"]}}}]}


@pytest.fixture(scope="module")
def speculative_server(glm_binary, tmp_path_factory):
    directory = mtp_fixture.with_mtp_layer(TINY, tmp_path_factory.mktemp("tiny-mtp"))
    original = apps_support.TINY
    apps_support.TINY = directory   # Server starts the model apps_support.TINY names
    try:
        s = Server("--speculative-tokens", "2", "--context", "1024")
    finally:
        apps_support.TINY = original
    yield s
    assert s.stop() == 0, s.process.stderr.read()


def test_replies_equal_plain_decoding_and_usage_counts_drafts(speculative_server):
    status, fast = speculative_server.request("POST", "/v1/chat/completions", QUESTION)
    assert status == 200, fast
    status, plain = speculative_server.request("POST", "/v1/chat/completions",
                                               {**QUESTION, "speculative_config": {"num_speculative_tokens": 0}})
    assert status == 200, plain
    assert fast["choices"] == plain["choices"]
    details = fast["usage"]["completion_tokens_details"]
    assert details["accepted_prediction_tokens"] + details["rejected_prediction_tokens"] > 0
    assert "completion_tokens_details" not in plain["usage"]
    status, three = speculative_server.request("POST", "/v1/chat/completions",
                                               {**QUESTION, "speculative_config": {"method": "mtp", "num_speculative_tokens": 3}})
    assert status == 200 and three["choices"] == plain["choices"]


def test_streamed_usage_and_bad_values(speculative_server):
    status, text = speculative_server.request("POST", "/v1/chat/completions",
                                              {**QUESTION, "stream": True, "stream_options": {"include_usage": True}})
    assert status == 200
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    assert "completion_tokens_details" in chunks[-1]["usage"]
    status, error = speculative_server.request("POST", "/v1/chat/completions",
                                               {**QUESTION, "speculative_config": {"num_speculative_tokens": 9}})
    assert status == 400 and "num_speculative_tokens" in error["error"]["message"]


def test_the_option_is_checked():
    result = run_glm("serve", TINY, "--speculative-tokens", "4", "--port", "0")
    assert result.returncode == 64
    config = json.loads((TINY / "config.json").read_text())
    if not config.get("num_nextn_predict_layers"):   # a model without an MTP layer cannot draft
        result = run_glm("serve", TINY, "--speculative-tokens", "1", "--port", "0", "-q", timeout=60)
        assert result.returncode != 0 and "MTP" in result.stderr
