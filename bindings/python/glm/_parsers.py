"""GLM-4.7 output parsing: glm.parse_output and glm.StreamParser."""
import ctypes
import json

from ._native import lib, check, take_string, encode, dumps

_c = ctypes
_P = _c.c_void_p
_OUT_STR = _c.POINTER(_c.c_void_p)

lib.glm_parse_output.restype = _c.c_int
lib.glm_parse_output.argtypes = [_c.c_char_p, _c.c_char_p, _OUT_STR]
lib.glm_stream_parser_new.restype = _c.c_int
lib.glm_stream_parser_new.argtypes = [_c.c_char_p, _c.POINTER(_P)]
lib.glm_stream_parser_feed.restype = _c.c_int
lib.glm_stream_parser_feed.argtypes = [_P, _c.c_char_p, _OUT_STR]
lib.glm_stream_parser_finish.restype = _c.c_int
lib.glm_stream_parser_finish.argtypes = [_P, _OUT_STR, _OUT_STR]
lib.glm_stream_parser_free.restype = None
lib.glm_stream_parser_free.argtypes = [_P]


def _parser_options(tools, thinking, keep_undeclared_tools, tool_choice, tool_call_id_seed=None):
    options = {"tools": tools, "thinking": bool(thinking)}
    if keep_undeclared_tools:
        options["keep_undeclared_tools"] = True
    if tool_choice is not None:
        options["tool_choice"] = tool_choice
    if tool_call_id_seed is not None:
        options["tool_call_id_seed"] = int(tool_call_id_seed)
    return dumps(options)


def parse_output(text, tools=None, *, thinking=True, keep_undeclared_tools=False, tool_choice=None,
                 tool_call_id_seed=None):
    """Splits a finished GLM-4.7 output into an assistant message dict.

    Returns {"role": "assistant", "content", "reasoning_content", "tool_calls"} as vLLM's
    `--reasoning-parser glm45 --tool-call-parser glm47` would. `thinking` says the prompt ended in <think>.
    """
    out = _c.c_void_p()
    check(lib.glm_parse_output(encode(text, "text"), _parser_options(tools, thinking, keep_undeclared_tools,
                                                                      tool_choice, tool_call_id_seed), _c.byref(out)))
    return json.loads(take_string(out))


class StreamParser:
    """Incremental parser: feed arbitrary text chunks, get events; finish() gives the final message."""

    def __init__(self, tools=None, *, thinking=True, keep_undeclared_tools=False, tool_choice=None,
                 tool_call_id_seed=None):
        handle = _P()
        check(lib.glm_stream_parser_new(_parser_options(tools, thinking, keep_undeclared_tools, tool_choice,
                                                        tool_call_id_seed),
                                        _c.byref(handle)))
        self._handle = handle
        self._final_events = None
        self._final_message = None

    def feed(self, chunk):
        """Returns the events this chunk completes, as OpenAI chunk deltas: {"reasoning_content": ...},
        {"content": ...}, {"tool_calls": [{"index", "id", "type", "function": {"name"}}]} when a call starts,
        {"tool_calls": [{"index", "function": {"arguments": ...}}]} for argument text."""
        out = _c.c_void_p()
        check(lib.glm_stream_parser_feed(self._handle, encode(chunk, "chunk"), _c.byref(out)))
        return json.loads(take_string(out))

    def flush(self):
        """Ends the response and returns the events for text that was still withheld (usually [] or a
        trailing piece of content). finish() then returns the final message."""
        self._finish()
        return self._final_events

    def finish(self):
        """Ends the response and returns the final assistant message dict (equal to parse_output() of all the
        text fed). Call flush() first to also receive the last withheld events."""
        self._finish()
        return self._final_message

    def _finish(self):
        if self._final_message is not None:
            return
        events, message = _c.c_void_p(), _c.c_void_p()
        check(lib.glm_stream_parser_finish(self._handle, _c.byref(events), _c.byref(message)))
        self._final_events = json.loads(take_string(events))
        self._final_message = json.loads(take_string(message))

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_stream_parser_free(handle)
