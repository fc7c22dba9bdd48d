"""glm.Tokenizer: byte-level BPE identical to HF tokenizers, from tokenizer.json, a model directory or a GGUF."""
import ctypes

from ._native import lib, check, encode

_c = ctypes
_P = _c.c_void_p
_OUT_STR = _c.POINTER(_c.c_void_p)

lib.glm_tokenizer_load.restype = _c.c_int
lib.glm_tokenizer_load.argtypes = [_c.c_char_p, _c.POINTER(_P)]
lib.glm_tokenizer_free.restype = None
lib.glm_tokenizer_free.argtypes = [_P]
lib.glm_tokenize.restype = _c.c_int
lib.glm_tokenize.argtypes = [_P, _c.c_char_p, _c.c_size_t, _c.c_bool, _c.POINTER(_c.POINTER(_c.c_int32)),
                             _c.POINTER(_c.c_size_t)]
lib.glm_detokenize.restype = _c.c_int
lib.glm_detokenize.argtypes = [_P, _c.POINTER(_c.c_int32), _c.c_size_t, _c.c_bool, _OUT_STR, _c.POINTER(_c.c_size_t)]
lib.glm_token_to_piece.restype = _c.c_int
lib.glm_token_to_piece.argtypes = [_P, _c.c_int32, _OUT_STR, _c.POINTER(_c.c_size_t)]
lib.glm_tokenizer_vocab_size.restype = _c.c_int
lib.glm_tokenizer_vocab_size.argtypes = [_P, _c.POINTER(_c.c_int32)]
lib.glm_tokenizer_token_to_id.restype = _c.c_int
lib.glm_tokenizer_token_to_id.argtypes = [_P, _c.c_char_p, _c.POINTER(_c.c_int32)]
lib.glm_tokenizer_is_special.restype = _c.c_int
lib.glm_tokenizer_is_special.argtypes = [_P, _c.c_int32, _c.POINTER(_c.c_bool)]


def _take_bytes(pointer, length):
    try:
        return _c.string_at(pointer, length)
    finally:
        lib.glm_free(pointer)


def id_array(ids):
    """A ctypes int32 array from any iterable of ints (range-checked against int32)."""
    values = [int(i) for i in ids]
    for v in values:
        if not -2**31 <= v < 2**31:
            raise ValueError("token id %d does not fit in int32" % v)
    return (_c.c_int32 * len(values))(*values), len(values)


class Tokenizer:
    """A loaded tokenizer; immutable and safe to share between threads."""

    def __init__(self, handle, owner=None):
        self._handle = handle
        self._owner = owner  # keeps a model alive when the tokenizer belongs to one

    @classmethod
    def from_file(cls, path):
        """Loads a tokenizer.json, a model directory holding one, or a .gguf file."""
        handle = _P()
        check(lib.glm_tokenizer_load(encode(str(path), "path"), _c.byref(handle)))
        return cls(handle)

    def encode(self, text, *, add_special_tokens=False):
        """Token ids of `text` (added tokens such as <think> match as single tokens)."""
        data = encode(text, "text", allow_nul=True)  # passed with its length: NUL is text like any other
        ids = _c.POINTER(_c.c_int32)()
        count = _c.c_size_t()
        check(lib.glm_tokenize(self._handle, data, len(data), bool(add_special_tokens), _c.byref(ids),
                               _c.byref(count)))
        try:
            return ids[:count.value]
        finally:
            lib.glm_free(ids)

    def decode(self, ids, *, skip_special_tokens=False):
        """Text of `ids`; invalid UTF-8 becomes U+FFFD. Raises InvalidArgumentError for an unknown id."""
        array, count = id_array(ids)
        out = _c.c_void_p()
        length = _c.c_size_t()
        check(lib.glm_detokenize(self._handle, array, count, bool(skip_special_tokens), _c.byref(out),
                                 _c.byref(length)))
        return _take_bytes(out, length.value).decode("utf-8")

    def token_to_piece(self, token_id):
        """The raw bytes one token stands for (possibly part of a UTF-8 character)."""
        out = _c.c_void_p()
        length = _c.c_size_t()
        check(lib.glm_token_to_piece(self._handle, int(token_id), _c.byref(out), _c.byref(length)))
        return _take_bytes(out, length.value)

    def token_to_id(self, token):
        """The id of a vocabulary entry as written in tokenizer.json ("<think>", "Ġthe"), or None."""
        out = _c.c_int32()
        check(lib.glm_tokenizer_token_to_id(self._handle, encode(token, "token"), _c.byref(out)))
        return None if out.value < 0 else out.value

    def is_special(self, token_id):
        out = _c.c_bool()
        check(lib.glm_tokenizer_is_special(self._handle, int(token_id), _c.byref(out)))
        return out.value

    @property
    def vocab_size(self):
        out = _c.c_int32()
        check(lib.glm_tokenizer_vocab_size(self._handle, _c.byref(out)))
        return out.value

    def __len__(self):
        return self.vocab_size

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle and getattr(self, "_owner", None) is None:
            lib.glm_tokenizer_free(handle)
