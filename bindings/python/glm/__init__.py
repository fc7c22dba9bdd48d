"""libglm: run Z.ai's GLM-4.x MoE models (GLM-4.7, 4.6, 4.5, 4.5-Air) in-process.

Thin ctypes bindings over libglm.so's C ABI (include/glm.h).
"""
from ._native import (GLMError, InvalidArgumentError, GLMIOError, FormatError, UnsupportedError,
                      GLMMemoryError, CancelledError, ContextFullError, TemplateError,
                      LimitExceededError, InternalError)
from . import _native
from ._parsers import parse_output, StreamParser
from ._tokenizer import Tokenizer
from ._model import Model, Session
from ._template import render_chat, ChatTemplate
from ._grammar import Grammar, GrammarMatcher
from ._quantize import quantize

__all__ = [
    "render_chat", "ChatTemplate", "parse_output", "StreamParser", "Tokenizer", "Model", "Session", "Grammar",
    "GrammarMatcher", "quantize",
    "version", "api_version", "set_default_threads", "default_threads", "system_info",
    "GLMError", "InvalidArgumentError", "GLMIOError", "FormatError", "UnsupportedError", "GLMMemoryError",
    "CancelledError", "ContextFullError", "TemplateError", "LimitExceededError", "InternalError",
]

API_VERSION = 2

if _native.lib.glm_api_version() != API_VERSION:
    raise ImportError("libglm.so has API version %d, these bindings expect %d"
                      % (_native.lib.glm_api_version(), API_VERSION))


def version():
    """The library version string."""
    return _native.lib.glm_version().decode()


def api_version():
    return _native.lib.glm_api_version()


def system_info():
    """What this machine can run: {"cpu": {"vendor", "brand", "features"}, "kernels": {"supported", "missing",
    "available", "default", "environment"}, "openblas": {"core"}, ...} (glm_system_info)."""
    import json
    out = _native.ctypes.c_void_p()
    _native.check(_native.lib.glm_system_info(_native.ctypes.byref(out)))
    return json.loads(_native.take_string(out))


def set_default_threads(threads):
    """Threads used where a call does not say (initially the CPU count)."""
    _native.check(_native.lib.glm_set_default_threads(int(threads)))


def default_threads():
    return _native.lib.glm_default_threads()
