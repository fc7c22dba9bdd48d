"""glm.Model and glm.Session: load a GLM-4.x MoE checkpoint and compute logits."""
import ctypes
import json
import os

from ._native import lib, check, take_string, encode
from ._tokenizer import Tokenizer, id_array
from ._chat import Chat

try:
    import numpy as _np
except ImportError:  # numpy is optional: logits then come back as lists of lists
    _np = None

_c = ctypes
_P = _c.c_void_p
_OUT_STR = _c.POINTER(_c.c_void_p)
_FLOATS = _c.POINTER(_c.c_float)


class _ModelParams(_c.Structure):
    _fields_ = [("threads", _c.c_int32), ("gemm", _c.c_int), ("kernels", _c.c_int), ("bf16_inputs", _c.c_int),
                ("populate", _c.c_int32)]


_GEMM = {"auto": 0, "packed": 1, "openblas": 2}
# glm_logits: which rows of logits a call computes.
_LOGITS_NONE, _LOGITS_LAST, _LOGITS_ALL = 0, 1, 2
_KERNELS = {"auto": 0, "avx2": 1, "avx512": 2}
_BF16_INPUTS = {"auto": 0, "f32": 1, "bf16": 2}


class _SessionParams(_c.Structure):
    _fields_ = [("context_length", _c.c_int32), ("threads", _c.c_int32), ("batch_size", _c.c_int32),
                ("mtp", _c.c_bool), ("type_k", _c.c_int), ("type_v", _c.c_int), ("memory_limit", _c.c_uint64)]


# glm_kv_type: the KV cache's element types (llama.cpp's --cache-type-k/-v names).
KV_TYPES = {"f16": 0, "bf16": 1, "f32": 2, "q8_0": 3}


def kv_type(name, what):
    """The glm_kv_type of `name` ("f16", "bf16", "f32", "q8_0")."""
    if name not in KV_TYPES:
        raise ValueError(f"{what} must be one of {', '.join(KV_TYPES)}, got {name!r}")
    return KV_TYPES[name]


def memory_cap(limit):
    """A memory_limit argument (bytes; None or 0: no cap of the caller's own)."""
    limit = int(limit or 0)
    if limit < 0:
        raise ValueError("memory_limit must not be negative")
    return limit


def _session_params(context_length, threads, batch_size, mtp, cache_type_k, cache_type_v, memory_limit):
    params = lib.glm_session_default_params()
    params.context_length = int(context_length or 0)
    params.threads = _threads(threads)
    params.batch_size = int(batch_size or 0)
    params.mtp = bool(mtp)
    params.type_k = kv_type(cache_type_k, "cache_type_k")
    params.type_v = kv_type(cache_type_v, "cache_type_v")
    params.memory_limit = memory_cap(memory_limit)
    return params


lib.glm_model_default_params.restype = _ModelParams
lib.glm_model_default_params.argtypes = []
lib.glm_model_load.restype = _c.c_int
lib.glm_model_load.argtypes = [_c.c_char_p, _c.POINTER(_ModelParams), _c.POINTER(_P)]
lib.glm_model_free.restype = None
lib.glm_model_free.argtypes = [_P]
lib.glm_model_info.restype = _c.c_int
lib.glm_model_info.argtypes = [_P, _OUT_STR]
lib.glm_model_vocab_size.restype = _c.c_int
lib.glm_model_vocab_size.argtypes = [_P, _c.POINTER(_c.c_int32)]
lib.glm_session_default_params.restype = _SessionParams
lib.glm_session_default_params.argtypes = []
lib.glm_session_new.restype = _c.c_int
lib.glm_session_new.argtypes = [_P, _c.POINTER(_SessionParams), _c.POINTER(_P)]
lib.glm_session_memory.restype = _c.c_int
lib.glm_session_memory.argtypes = [_P, _c.POINTER(_SessionParams), _c.POINTER(_c.c_uint64)]
lib.glm_session_info.restype = _c.c_int
lib.glm_session_info.argtypes = [_P, _OUT_STR]
lib.glm_session_free.restype = None
lib.glm_session_free.argtypes = [_P]
lib.glm_session_eval.restype = _c.c_int
lib.glm_session_eval.argtypes = [_P, _c.POINTER(_c.c_int32), _c.c_size_t, _c.c_int, _FLOATS, _c.c_size_t]
lib.glm_session_truncate.restype = _c.c_int
lib.glm_session_truncate.argtypes = [_P, _c.c_size_t]
lib.glm_session_position.restype = _c.c_int
lib.glm_session_position.argtypes = [_P, _c.POINTER(_c.c_size_t)]
lib.glm_session_mtp_logits.restype = _c.c_int
lib.glm_session_mtp_logits.argtypes = [_P, _c.POINTER(_c.c_int32), _c.c_size_t, _c.c_int, _FLOATS, _c.c_size_t]


def _matrix(rows, vocab):
    """A zeroed float32 buffer of rows×vocab: (ctypes pointer, object to return)."""
    if _np is not None:
        array = _np.zeros((rows, vocab), dtype=_np.float32)
        return array.ctypes.data_as(_FLOATS), array
    buffer = (_c.c_float * (rows * vocab))()
    return _c.cast(buffer, _FLOATS), buffer


def _finish(holder, rows, vocab):
    if _np is not None:
        return holder
    flat = list(holder)
    return [flat[r * vocab:(r + 1) * vocab] for r in range(rows)]


def _threads(threads):
    if threads is None:
        return 0
    threads = int(threads)
    if threads < 1:
        raise ValueError("threads must be at least 1")
    return threads


class Model:
    """A loaded Glm4MoeForCausalLM checkpoint directory, or a llama.cpp GGUF file of one (split or not; weights
    memory-mapped, shared by its sessions)."""

    def __init__(self, path, *, threads=None, gemm="auto", kernels="auto", bf16_inputs="auto", populate=False):
        """`gemm`: how prefill's matrix products run: "auto" (GLM_GEMM if set, else "packed"), "packed" or
        "openblas"; an explicit choice wins over GLM_GEMM.
        `kernels`: "auto" (GLM_KERNELS if set, else the CPU's best), "avx2" or "avx512"; an explicit choice wins
        over GLM_KERNELS. info()["kernels"] says which path runs; glm.system_info() what this CPU can run.
        `bf16_inputs`: how bf16 weights multiply: "f32" (inputs kept in f32, exact products), "bf16" (inputs rounded
        to bf16 as llama.cpp does; vdpbf16ps on the avx512 path of a CPU with AVX-512 BF16) or "auto" (bf16 for a
        GGUF file, f32 for a checkpoint directory). info()["bf16_inputs"] says which applies.
        `populate`: True maps every page of the model's files into the process before returning (reading from disk
        what the page cache lacks), so that the first tokens do not stop on page faults; False (default) maps them
        on first use and returns at once."""
        params = lib.glm_model_default_params()
        params.populate = 1 if populate else 0
        params.threads = _threads(threads)
        if gemm not in _GEMM:
            raise ValueError("gemm must be 'auto', 'packed' or 'openblas'")
        params.gemm = _GEMM[gemm]
        if kernels not in _KERNELS:
            raise ValueError("kernels must be 'auto', 'avx2' or 'avx512'")
        params.kernels = _KERNELS[kernels]
        if bf16_inputs not in _BF16_INPUTS:
            raise ValueError("bf16_inputs must be 'auto', 'f32' or 'bf16'")
        params.bf16_inputs = _BF16_INPUTS[bf16_inputs]
        handle = _P()
        check(lib.glm_model_load(encode(os.fspath(path), "path"), _c.byref(params), _c.byref(handle)))
        self._handle = handle
        self.path = os.fspath(path)
        self._tokenizer = None
        self._chat = None
        self._threads = threads
        size = _c.c_int32()
        check(lib.glm_model_vocab_size(handle, _c.byref(size)))
        self.vocab_size = size.value

    def info(self):
        """{"config": {...}, "parameter_count", "bytes_mapped", "dtype", "has_mtp", "gemm", "kernels", ...}"""
        out = _c.c_void_p()
        check(lib.glm_model_info(self._handle, _c.byref(out)))
        return json.loads(take_string(out))

    @property
    def tokenizer(self):
        """The tokenizer stored beside the weights (tokenizer.json), or in the GGUF file (its first part)."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer.from_file(self.info().get("gguf_file", self.path))
        return self._tokenizer

    def session(self, context_length=None, *, threads=None, batch_size=None, mtp=True, num_speculative_tokens=0,
                cache_type_k="f16", cache_type_v="f16", memory_limit=None):
        """A new session (KV cache) on this model. `context_length` None: min(4096, max_position_embeddings).
        `num_speculative_tokens`: MTP speculative decoding (0 off, 1-3 drafts per step) for its chat requests.
        `cache_type_k`, `cache_type_v`: the KV cache's element types, "f16" (default), "bf16", "f32" or "q8_0".
        `memory_limit`: bytes the session may take at most (besides the machine's own limit); a session that
        does not fit raises glm.GLMMemoryError before anything is allocated (see session_memory)."""
        return Session(self, context_length=context_length, threads=threads, batch_size=batch_size, mtp=mtp,
                       num_speculative_tokens=num_speculative_tokens, cache_type_k=cache_type_k,
                       cache_type_v=cache_type_v, memory_limit=memory_limit)

    def session_memory(self, context_length=None, *, threads=None, batch_size=None, mtp=True, cache_type_k="f16",
                       cache_type_v="f16"):
        """Bytes a session with these arguments will allocate (glm_session_memory); allocates nothing."""
        params = _session_params(context_length, threads, batch_size, mtp, cache_type_k, cache_type_v, 0)
        out = _c.c_uint64()
        check(lib.glm_session_memory(self._handle, _c.byref(params), _c.byref(out)))
        return out.value

    def chat(self, messages, *, tools=None, stream=False, **options):
        """An OpenAI chat completion: returns the `chat.completion` dict, or with stream=True an iterator of
        `chat.completion.chunk` dicts. `options` are request fields: temperature, top_p, top_k, min_p, seed,
        max_tokens, stop, tool_choice, presence_penalty, frequency_penalty, repetition_penalty, logit_bias,
        chat_template_kwargs={"enable_thinking": False}, num_speculative_tokens=k (MTP speculative decoding, k = 1-3
        drafts per step; same output, faster; usage.completion_tokens_details counts accepted and rejected
        drafts), ... The model keeps one default chat session, so a
        follow-up request reuses the cached prefix; use .session() for independent conversations."""
        if self._chat is None:
            self._chat = Chat(self, threads=self._threads)
        return _run_chat(self._chat, messages, tools, stream, options)

    def logits(self, tokens, *, cache_type_k="f32", cache_type_v="f32"):
        """Logits [len(tokens), vocab] of one fresh forward pass over `tokens` (an f32 KV cache unless told: the
        exact computation, for comparisons with references)."""
        tokens = list(tokens)
        return self.session(max(1, len(tokens)), mtp=False, cache_type_k=cache_type_k,
                            cache_type_v=cache_type_v).eval(tokens, all_logits=True)

    def mtp_logits(self, tokens):
        """MTP draft logits [len(tokens) - 1, vocab]: row i predicts tokens[i+2] from the main model's state at
        position i and the token tokens[i+1]."""
        tokens = list(tokens)
        if len(tokens) < 2:
            raise ValueError("mtp_logits needs at least 2 tokens")
        session = self.session(len(tokens), mtp=True, cache_type_k="f32", cache_type_v="f32")
        session.eval(tokens, want_logits=False)
        return session.mtp_logits(tokens[1:])

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_model_free(handle)


class Session:
    """One sequence's KV cache on a Model. Use from one thread at a time: a call while another runs on the same
    session raises InvalidArgumentError ("session is in use by another call")."""

    def __init__(self, model, *, context_length=None, threads=None, batch_size=None, mtp=True,
                 num_speculative_tokens=0, cache_type_k="f16", cache_type_v="f16", memory_limit=None):
        params = _session_params(context_length, threads, batch_size, mtp, cache_type_k, cache_type_v, memory_limit)
        handle = _P()
        check(lib.glm_session_new(model._handle, _c.byref(params), _c.byref(handle)))
        self._handle = handle
        self.model = model
        self._context_length = context_length
        self._threads = threads
        self._speculative = num_speculative_tokens
        self._cache_types = (cache_type_k, cache_type_v)
        self._memory_limit = memory_limit
        self._chat = None

    def info(self):
        """{"context_length", "threads", "batch_size", "mtp", "type_k", "type_v", "kv_bytes_per_token",
        "mtp_kv_bytes_per_token", "bytes"} (glm_session_info)."""
        out = _c.c_void_p()
        check(lib.glm_session_info(self._handle, _c.byref(out)))
        return json.loads(take_string(out))

    def chat(self, messages, *, tools=None, stream=False, **options):
        """As Model.chat, on this session's own chat cache (created on first use; it is separate from the
        cache eval() uses)."""
        if self._chat is None:
            self._chat = Chat(self.model, context_length=self._context_length, threads=self._threads,
                              num_speculative_tokens=self._speculative, cache_type_k=self._cache_types[0],
                              cache_type_v=self._cache_types[1], memory_limit=self._memory_limit)
        return _run_chat(self._chat, messages, tools, stream, options)

    def eval(self, tokens, *, all_logits=False, want_logits=True):
        """Appends `tokens` to the cache; returns the last token's logits [vocab] (or [len, vocab] with
        all_logits=True; None with want_logits=False)."""
        array, count = id_array(tokens)
        vocab = self.model.vocab_size
        if not want_logits:
            check(lib.glm_session_eval(self._handle, array, count, _LOGITS_NONE, None, 0))
            return None
        rows = count if all_logits else 1
        pointer, holder = _matrix(rows, vocab)
        check(lib.glm_session_eval(self._handle, array, count, _LOGITS_ALL if all_logits else _LOGITS_LAST, pointer,
                                   rows * vocab))
        result = _finish(holder, rows, vocab)
        return result if all_logits else result[0]

    def mtp_logits(self, next_tokens):
        """MTP drafts for the next len(next_tokens) positions of the MTP cache ([len, vocab])."""
        array, count = id_array(next_tokens)
        vocab = self.model.vocab_size
        pointer, holder = _matrix(count, vocab)
        check(lib.glm_session_mtp_logits(self._handle, array, count, _LOGITS_ALL, pointer, count * vocab))
        return _finish(holder, count, vocab)

    def truncate(self, n_tokens):
        """Keeps the first n_tokens positions of the cache (prefix reuse)."""
        if n_tokens < 0:
            raise ValueError("n_tokens must not be negative")
        check(lib.glm_session_truncate(self._handle, int(n_tokens)))

    @property
    def position(self):
        out = _c.c_size_t()
        check(lib.glm_session_position(self._handle, _c.byref(out)))
        return out.value

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_session_free(handle)


def _run_chat(chat, messages, tools, stream, options):
    if stream:
        return chat.stream(messages, tools, options)
    return chat.complete(messages, tools, options)
