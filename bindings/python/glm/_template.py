"""Chat templates: glm.render_chat and glm.ChatTemplate."""
import ctypes
import json

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

    def render(self, messages, tools=None, *, add_generation_prompt=True, **template_vars):
        request = {"messages": messages, "tools": tools, "add_generation_prompt": bool(add_generation_prompt),
                   "chat_template_kwargs": template_vars}
        out = _c.c_void_p()
        check(lib.glm_chat_render(self._handle, dumps(request), _c.byref(out)))
        return take_string(out)

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_chat_template_free(handle)


_default_template = None
_template_cache = {}


def render_chat(messages, tools=None, *, template=None, add_generation_prompt=True, **template_vars):
    """Renders `messages` (OpenAI chat shape) with a chat template exactly as transformers' apply_chat_template.

    `template` is Jinja source text; None means GLM-4.7's official template. Extra keyword arguments become
    template variables (enable_thinking=False, clear_thinking=False, ...); a variable not passed is undefined.
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
    return tmpl.render(messages, tools, add_generation_prompt=add_generation_prompt, **template_vars)


