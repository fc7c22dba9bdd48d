"""glm.Grammar: constrained decoding for any sampler (JSON schema, regular expression, GLM-4.7 tool calls)."""
import ctypes
import json

from ._native import lib, check, take_string, encode, dumps

try:
    import numpy as _np
except ImportError:  # numpy is optional: masks then come back as lists of ints
    _np = None

_c = ctypes
_P = _c.c_void_p
_OUT_STR = _c.POINTER(_c.c_void_p)

_KINDS = {"json_schema": 0, "json_object": 1, "regex": 2, "tool_calls": 3}

lib.glm_grammar_compile.restype = _c.c_int
lib.glm_grammar_compile.argtypes = [_P, _c.c_int, _c.c_char_p, _c.c_char_p, _c.POINTER(_P)]
lib.glm_grammar_free.restype = None
lib.glm_grammar_free.argtypes = [_P]
lib.glm_grammar_info.restype = _c.c_int
lib.glm_grammar_info.argtypes = [_P, _OUT_STR]
lib.glm_grammar_matcher_new.restype = _c.c_int
lib.glm_grammar_matcher_new.argtypes = [_P, _c.POINTER(_P)]
lib.glm_grammar_matcher_free.restype = None
lib.glm_grammar_matcher_free.argtypes = [_P]
lib.glm_grammar_matcher_fill_mask.restype = _c.c_int
lib.glm_grammar_matcher_fill_mask.argtypes = [_P, _c.POINTER(_c.c_uint32), _c.c_size_t]
lib.glm_grammar_matcher_accept.restype = _c.c_int
lib.glm_grammar_matcher_accept.argtypes = [_P, _c.c_int32]
lib.glm_grammar_matcher_accept_text.restype = _c.c_int
lib.glm_grammar_matcher_accept_text.argtypes = [_P, _c.c_char_p, _c.c_size_t]
lib.glm_grammar_matcher_status.restype = _c.c_int
lib.glm_grammar_matcher_status.argtypes = [_P, _c.POINTER(_c.c_bool), _c.POINTER(_c.c_bool)]
lib.glm_grammar_matcher_rollback.restype = _c.c_int
lib.glm_grammar_matcher_rollback.argtypes = [_P, _c.c_size_t]
lib.glm_grammar_matcher_reset.restype = _c.c_int
lib.glm_grammar_matcher_reset.argtypes = [_P]


class Grammar:
    """A constraint compiled for one tokenizer (immutable; share it between threads, one matcher per output).

    Build one with Grammar.json_schema, Grammar.json_object, Grammar.regex or Grammar.tool_calls. Options:
    end_token_ids (default: the tokenizer's eos token), strict (refuse unsupported schema keywords),
    max_whitespace (between JSON tokens, default 20), reasoning (free text up to "</think>" first)."""

    def __init__(self, tokenizer, kind, source, **options):
        if kind not in _KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(_KINDS))
        self._tokenizer = tokenizer  # the vocabulary must outlive the grammar
        handle = _P()
        opts = {k: v for k, v in options.items() if v is not None}
        check(lib.glm_grammar_compile(tokenizer._handle, _KINDS[kind], source, dumps(opts) if opts else None,
                                      _c.byref(handle)))
        self._handle = handle
        self.vocab_size = tokenizer.vocab_size

    @classmethod
    def json_schema(cls, tokenizer, schema, **options):
        """JSON valid under `schema` (a dict, a bool, or JSON text)."""
        text = schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)
        return cls(tokenizer, "json_schema", encode(text, "schema"), **options)

    @classmethod
    def json_object(cls, tokenizer, **options):
        """Any JSON object (OpenAI's response_format json_object)."""
        return cls(tokenizer, "json_object", None, **options)

    @classmethod
    def regex(cls, tokenizer, pattern, **options):
        """Text that `pattern` (JSON Schema's regex dialect) matches as a whole."""
        return cls(tokenizer, "regex", encode(pattern, "pattern"), **options)

    @classmethod
    def tool_calls(cls, tokenizer, tools, *, tool_choice="required", parallel_tool_calls=True, **options):
        """GLM-4.7 tool calls for an OpenAI `tools` list: tool_choice "required" (one or more calls) or
        {"type": "function", "function": {"name": ...}} (exactly one call of it)."""
        return cls(tokenizer, "tool_calls", dumps(tools), tool_choice=tool_choice,
                   parallel_tool_calls=parallel_tool_calls, **options)

    def info(self):
        """{"kind", "vocab_size", "mask_words", "end_token_ids", "lexemes", "rules", "ignored"}"""
        out = _c.c_void_p()
        check(lib.glm_grammar_info(self._handle, _c.byref(out)))
        return json.loads(take_string(out))

    def matcher(self):
        """A new matcher at the start of the output."""
        return GrammarMatcher(self)

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_grammar_free(handle)


class GrammarMatcher:
    """One output's state under a Grammar: mask() before each token, accept(token) after choosing it. One
    thread at a time."""

    def __init__(self, grammar):
        handle = _P()
        check(lib.glm_grammar_matcher_new(grammar._handle, _c.byref(handle)))
        self._handle = handle
        self.grammar = grammar
        self._words = (grammar.vocab_size + 31) // 32

    def mask(self):
        """The allowed ids as 32-bit words, bit (id % 32) of word id // 32: a numpy uint32 array (a list without
        numpy), the layout xgrammar and llguidance use."""
        if _np is not None:
            words = _np.zeros(self._words, dtype=_np.uint32)
            check(lib.glm_grammar_matcher_fill_mask(self._handle, words.ctypes.data_as(_c.POINTER(_c.c_uint32)),
                                                    self._words))
            return words
        buffer = (_c.c_uint32 * self._words)()
        check(lib.glm_grammar_matcher_fill_mask(self._handle, buffer, self._words))
        return list(buffer)

    def allowed_tokens(self):
        """The allowed ids, ascending."""
        words = self.mask()
        return [w * 32 + b for w, word in enumerate(words) if word for b in range(32) if (int(word) >> b) & 1]

    def accept(self, token):
        """Advances by `token`; raises InvalidArgumentError (and changes nothing) if it is not allowed."""
        check(lib.glm_grammar_matcher_accept(self._handle, int(token)))

    def accept_text(self, text):
        """Advances by raw text (str or bytes), as one step."""
        data = text if isinstance(text, bytes) else encode(text, "text", allow_nul=True)
        check(lib.glm_grammar_matcher_accept_text(self._handle, data, len(data)))

    def _status(self):
        can_end, ended = _c.c_bool(), _c.c_bool()
        check(lib.glm_grammar_matcher_status(self._handle, _c.byref(can_end), _c.byref(ended)))
        return can_end.value, ended.value

    @property
    def can_end(self):
        """Whether the text so far is a complete output (an end id is allowed)."""
        return self._status()[0]

    @property
    def ended(self):
        """Whether an end id was accepted."""
        return self._status()[1]

    def rollback(self, steps=1):
        check(lib.glm_grammar_matcher_rollback(self._handle, int(steps)))

    def reset(self):
        check(lib.glm_grammar_matcher_reset(self._handle))

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_grammar_matcher_free(handle)
