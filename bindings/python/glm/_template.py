"""Chat templates: glm.render_chat and glm.ChatTemplate."""
import calendar
import ctypes
import datetime
import math

from ._native import lib, check, take_string, encode, dumps

_c = ctypes
_P = _c.c_void_p
_OUT_STR = _c.POINTER(_c.c_void_p)

lib.glm_chat_template_new.restype = _c.c_int
lib.glm_chat_template_new.argtypes = [_c.c_char_p, _c.c_char_p, _c.POINTER(_P)]
lib.glm_chat_template_load.restype = _c.c_int
lib.glm_chat_template_load.argtypes = [_c.c_char_p, _c.c_char_p, _c.POINTER(_P)]
lib.glm_chat_template_free.restype = None
lib.glm_chat_template_free.argtypes = [_P]
lib.glm_chat_render.restype = _c.c_int
lib.glm_chat_render.argtypes = [_P, _c.c_char_p, _OUT_STR]


def epoch_seconds(now):
    """The request's "now" (whole seconds since 1970, shown in UTC) from an int, a float (floored) or a datetime
    (an aware one is converted to UTC; a naive one is taken as UTC wall-clock time, so its date is the one shown)."""
    if isinstance(now, bool):
        raise TypeError("now must be an int, a float or a datetime, not bool")
    if isinstance(now, datetime.datetime):
        if now.tzinfo is not None:
            now = now.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return calendar.timegm(now.timetuple())
    if isinstance(now, datetime.date):
        return calendar.timegm(now.timetuple())
    if isinstance(now, int):
        return now
    if isinstance(now, float):
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        return math.floor(now)
    raise TypeError(f"now must be an int, a float or a datetime, not {type(now).__name__}")


class ChatTemplate:
    """A parsed chat template (Jinja source), reusable and thread-safe.

    `ChatTemplate()` is GLM-4.7's official template; `ChatTemplate(source)` parses Jinja text; `special_tokens`
    ({"bos_token": ..., "eos_token": ...}) are the variables transformers passes to every template.
    `ChatTemplate.from_path(path, name=None)` reads a model directory, tokenizer_config.json, a .jinja file or a .gguf.
    """

    def __init__(self, source=None, *, special_tokens=None):
        handle = _P()
        check(lib.glm_chat_template_new(None if source is None else encode(source, "source"),
                                        None if special_tokens is None else dumps(special_tokens), _c.byref(handle)))
        self._handle = handle

    @classmethod
    def from_path(cls, path, name=None):
        self = cls.__new__(cls)
        handle = _P()
        check(lib.glm_chat_template_load(encode(str(path), "path"),
                                         None if name is None else encode(name, "name"), _c.byref(handle)))
        self._handle = handle
        return self

    def render(self, messages, tools=None, *, documents=None, add_generation_prompt=True, now=None,
               **template_vars):
        """The prompt for `messages` (OpenAI chat shape). `documents` is the RAG documents list that templates
        such as Command-R's and Granite's read; `now` fixes what `strftime_now` shows (see `render_chat`); other
        keywords become template variables."""
        request = {"messages": messages, "tools": tools, "add_generation_prompt": bool(add_generation_prompt),
                   "chat_template_kwargs": template_vars}
        if documents is not None:
            request["documents"] = documents
        if now is not None:
            request["now"] = epoch_seconds(now)
        out = _c.c_void_p()
        check(lib.glm_chat_render(self._handle, dumps(request), _c.byref(out)))
        return take_string(out)

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_chat_template_free(handle)


_default_template = None
_template_cache = {}


def render_chat(messages, tools=None, *, template=None, documents=None, add_generation_prompt=True, now=None,
                **template_vars):
    """Renders `messages` (OpenAI chat shape) with a chat template exactly as transformers' apply_chat_template.

    `template` is Jinja source text; None means GLM-4.7's official template. `documents` is passed to the
    template as transformers' `documents` (RAG templates). `now` is the instant `strftime_now` shows (an int or
    float of seconds since 1970, or a datetime), formatted in UTC; without it, SOURCE_DATE_EPOCH if set, else the
    real clock in local time, as transformers does. Extra keyword arguments become template variables
    (enable_thinking=False, clear_thinking=False, ...); a variable not passed is undefined.
    """
    global _default_template
    if template is None:
        if _default_template is None:
            _default_template = ChatTemplate()
        tmpl = _default_template
    else:
        tmpl = _template_cache.get(template)
        if tmpl is None:
            tmpl = ChatTemplate(template)
            if len(_template_cache) > 32:
                _template_cache.clear()
            _template_cache[template] = tmpl
    return tmpl.render(messages, tools, documents=documents, add_generation_prompt=add_generation_prompt, now=now,
                       **template_vars)


