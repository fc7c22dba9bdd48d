"""The tool-calling demo model with a trained MTP layer (Tests/Fixtures/models/glm-tiny-tools, made by
tools/make_demo_model_mtp.py; issue 15 items 4 and 5), through the C ABI from Python.

The trainer reports its numbers with transformers and the float64 reference (training_report.json); these tests
check that libglm gives them too:
  * exact tool name and arguments, greedy, on the held-out prompts: on both sets (argument values never trained on;
    the second also with phrasings never trained on) the count transformers gets, up to a near-tie or two, and at
    least 80 % on the first (the committed model's 83 %; issue 15 item 4 asks for 90 %, not reached yet);
  * MTP speculative decoding on the demo conversations: replies identical to plain decoding at every k, and at
    k = 1 at least 80 % of the drafts accepted (usage.completion_tokens_details);
  * libglm's MTP drafts along the demo conversations equal the reference's where its top-1/top-2 margin is clear.
"""
import json

import numpy as np
import pytest

import glm
from fixtures import FIXTURES

MODEL = FIXTURES / "models" / "glm-tiny-tools"
REPORT = json.loads((MODEL / "training_report.json").read_text())
CASES = json.loads((MODEL / "greedy.json").read_text())["cases"]
TOOLS = {t["function"]["name"]: t for t in REPORT["tools"]}


@pytest.fixture(scope="module")
def model():
    m = glm.Model(MODEL, threads=1)
    assert m.info()["has_mtp"]
    return m


def calls(reply):
    return [(c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in reply["choices"][0]["message"].get("tool_calls") or []]


@pytest.mark.parametrize("label", ["heldout_values", "heldout_values_and_phrasings"])
def test_held_out_tool_calls_copy_the_arguments(model, label):
    prompts = REPORT[label]["set"]
    assert len(prompts) >= (50 if label == "heldout_values" else 30)
    wrong = []
    for p in prompts:
        reply = model.chat(p["messages"], tools=[TOOLS[n] for n in p["tools"]], temperature=0, max_tokens=160)
        expected = [(p["expected"]["name"], p["expected"]["arguments"])]
        if calls(reply) != expected:
            wrong.append((p["messages"][0]["content"], calls(reply)))
    if label == "heldout_values":
        assert 1 - len(wrong) / len(prompts) >= 0.8, wrong
    # transformers, on the same stored weights, gets the same count up to a near-tie token or two.
    assert abs((len(prompts) - len(wrong)) - REPORT[label]["exact_tool_calls"]) <= 2


@pytest.mark.parametrize("k", [1, 2, 3])
def test_speculative_replies_equal_plain_and_k1_acceptance(model, k):
    accepted = drafted = 0
    for case in CASES:
        request = dict(case["request"])
        messages, tools = request.pop("messages"), request.pop("tools", None)
        request.pop("model", None)
        # (a seed: the tool calls' ids are random otherwise)
        plain = model.chat(messages, tools=tools, max_tokens=200, seed=7, **request)
        fast = model.chat(messages, tools=tools, max_tokens=200, seed=7, num_speculative_tokens=k, **request)
        assert fast["choices"] == plain["choices"], case["name"]
        d = fast["usage"]["completion_tokens_details"]
        accepted += d["accepted_prediction_tokens"]
        drafted += d["accepted_prediction_tokens"] + d["rejected_prediction_tokens"]
    assert drafted > 0
    if k == 1:
        assert accepted / drafted >= 0.8, (accepted, drafted)


def test_mtp_drafts_equal_the_reference(model):
    checked = 0
    for case in CASES:
        seq = case["prompt_ids"] + case["completion_ids"]
        drafts = np.asarray(model.mtp_logits(seq)).argmax(axis=-1)
        P = len(case["prompt_ids"])
        for j, (want, margin) in enumerate(zip(case["mtp_draft_ids"], case["mtp_draft_margins"])):
            if margin > 0.05:
                assert int(drafts[P - 1 + j]) == want, (case["name"], j)
                checked += 1
    assert checked > 100
