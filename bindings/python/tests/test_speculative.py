"""MTP speculative decoding through the C ABI from Python: num_speculative_tokens per request and per session,
usage.completion_tokens_details, and the same replies as plain decoding.

glm-tiny-chat has no MTP layer, so the positive tests give a copy of it one (mtp_fixture.with_mtp_layer): its
drafts are poor, which exercises rejection and rollback on almost every step; what must hold is that the replies
do not change."""
import pytest

import glm
from fixtures import DEMO_MODEL, WEATHER_QUESTION, WEATHER_TOOLS
from mtp_fixture import with_mtp_layer

MODEL = DEMO_MODEL
TOOLS = WEATHER_TOOLS
QUESTION = WEATHER_QUESTION


@pytest.fixture(scope="module")
def mtp_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-chat-mtp")
    with_mtp_layer(MODEL, directory)
    model = glm.Model(directory, threads=1)
    assert model.info()["has_mtp"]
    return model


def details(reply):
    return reply["usage"].get("completion_tokens_details")


@pytest.mark.parametrize("k", [1, 2, 3])
def test_greedy_replies_equal_plain_decoding(mtp_model, k):
    for messages, tools in [(QUESTION, TOOLS), ([{"role": "user", "content": "Hello"}], None)]:
        plain = mtp_model.session(1024).chat(messages, tools=tools, temperature=0, seed=3, max_tokens=80)
        fast = mtp_model.session(1024).chat(messages, tools=tools, temperature=0, seed=3, max_tokens=80,
                                            num_speculative_tokens=k)
        assert fast["choices"] == plain["choices"]
        d = details(fast)
        assert d["accepted_prediction_tokens"] + d["rejected_prediction_tokens"] > 0
        assert d["accepted_prediction_tokens"] <= fast["usage"]["completion_tokens"]
        assert details(plain) is None


def test_session_default_streaming_and_max_tokens(mtp_model):
    session = mtp_model.session(1024, num_speculative_tokens=2)
    plain = mtp_model.session(1024)
    for limit in (1, 3, 17):
        a = plain.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, max_tokens=limit)
        b = session.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, max_tokens=limit)
        assert b["choices"] == a["choices"]
        assert b["usage"]["completion_tokens"] == a["usage"]["completion_tokens"] <= limit
        assert details(b) is not None
    chunks = list(session.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, stream=True,
                               stream_options={"include_usage": True}))
    reference = list(plain.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, stream=True,
                                stream_options={"include_usage": True}))
    assert [c["choices"] for c in chunks] == [c["choices"] for c in reference]
    assert details(chunks[-1]) is not None
    # A request may turn it off on a speculative session.
    off = session.chat(QUESTION, tools=TOOLS, temperature=0, seed=1, num_speculative_tokens=0)
    assert details(off) is None


def test_models_without_mtp_and_bad_values_are_errors(mtp_model):
    plain_model = glm.Model(MODEL, threads=1)
    if not plain_model.info()["has_mtp"]:   # (the retrained demo model has one)
        with pytest.raises(glm.InvalidArgumentError, match="MTP"):
            plain_model.chat(QUESTION, num_speculative_tokens=1)
        with pytest.raises(glm.InvalidArgumentError, match="MTP"):
            plain_model.session(256, num_speculative_tokens=1).chat(QUESTION)
    for bad in (4, -1):
        with pytest.raises(glm.InvalidArgumentError, match="num_speculative_tokens"):
            mtp_model.chat(QUESTION, num_speculative_tokens=bad)
    with pytest.raises(glm.InvalidArgumentError, match="mtp"):
        mtp_model.chat(QUESTION, speculative_config={"method": "ngram"})
