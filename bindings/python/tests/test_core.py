import re

import pytest

import glm


def test_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", glm.version())
    assert glm.api_version() == glm.API_VERSION


def test_errors_become_exceptions_with_the_message():
    with pytest.raises(glm.InvalidArgumentError, match="threads must be"):
        glm.set_default_threads(0)
    with pytest.raises(glm.GLMError) as info:
        glm.set_default_threads(5000)
    assert info.value.status == 1


def test_default_threads_round_trip():
    before = glm.default_threads()
    glm.set_default_threads(3)
    assert glm.default_threads() == 3
    glm.set_default_threads(before)
