"""OpenAI-style chat completions on a glm_chat handle (used by glm.Model.chat and glm.Session.chat)."""
import ctypes
import json
import queue
import threading

from ._native import lib, check, take_string, dumps, CancelledError
from ._template import epoch_seconds

_c = ctypes
_P = _c.c_void_p


class _ChatParams(_c.Structure):
    _fields_ = [("context_length", _c.c_int32), ("threads", _c.c_int32), ("num_speculative_tokens", _c.c_int32),
                ("type_k", _c.c_int), ("type_v", _c.c_int), ("memory_limit", _c.c_uint64)]


class _Event(_c.Structure):
    _fields_ = [("kind", _c.c_int), ("chunk_json", _c.c_char_p), ("delta_json", _c.c_char_p)]


_CALLBACK = _c.CFUNCTYPE(_c.c_bool, _c.POINTER(_Event), _c.c_void_p)

lib.glm_chat_default_params.restype = _ChatParams
lib.glm_chat_default_params.argtypes = []
lib.glm_chat_new.restype = _c.c_int
lib.glm_chat_new.argtypes = [_P, _c.POINTER(_ChatParams), _c.POINTER(_P)]
lib.glm_chat_free.restype = None
lib.glm_chat_free.argtypes = [_P]
lib.glm_chat_complete.restype = _c.c_int
lib.glm_chat_complete.argtypes = [_P, _c.c_char_p, _CALLBACK, _c.c_void_p, _c.POINTER(_c.c_void_p)]
lib.glm_chat_reset.restype = _c.c_int
lib.glm_chat_reset.argtypes = [_P]


def request_json(messages, tools, stream, options):
    request = dict(options)
    k = request.pop("num_speculative_tokens", None)
    if k is not None:
        request["speculative_config"] = {"method": "mtp", "num_speculative_tokens": int(k)}
    if request.get("now") is not None:
        request["now"] = epoch_seconds(request["now"])
    request["messages"] = messages
    if tools is not None:
        request["tools"] = tools
    if stream:
        request["stream"] = True
    return dumps(request)


class Chat:
    """A glm_chat handle: a KV cache kept across requests, used by one request at a time (a lock enforces it)."""

    def __init__(self, model, context_length=None, threads=None, num_speculative_tokens=0, cache_type_k="f16",
                 cache_type_v="f16", memory_limit=None):
        from ._model import kv_type, memory_cap
        params = lib.glm_chat_default_params()
        params.type_k = kv_type(cache_type_k, "cache_type_k")
        params.type_v = kv_type(cache_type_v, "cache_type_v")
        params.memory_limit = memory_cap(memory_limit)
        params.context_length = int(context_length or 0)
        params.threads = int(threads or 0)
        params.num_speculative_tokens = int(num_speculative_tokens or 0)
        handle = _P()
        check(lib.glm_chat_new(model._handle, _c.byref(params), _c.byref(handle)))
        self._handle = handle
        self._model = model  # the model must outlive the handle's use
        self._lock = threading.Lock()

    def complete(self, messages, tools, options):
        out = _c.c_void_p()
        with self._lock:
            status = lib.glm_chat_complete(self._handle, request_json(messages, tools, False, options),
                                           _CALLBACK(), None, _c.byref(out))
        # Copied and freed before the status is checked: a cancelled request (GLM_ERR_CANCELLED) still returns
        # its partial response, which raising first would leak.
        response = take_string(out)
        check(status)
        return json.loads(response)

    def stream(self, messages, tools, options):
        """Yields OpenAI chat.completion.chunk dicts as they are generated. Closing the iterator early
        cancels the request (the session stays usable)."""
        body = request_json(messages, tools, True, options)
        chunks = queue.Queue()
        stop = threading.Event()
        done = object()

        def on_event(event, _user):
            chunks.put(json.loads(event.contents.chunk_json.decode("utf-8")))
            return not stop.is_set()

        callback = _CALLBACK(on_event)
        errors = []

        def run():
            out = _c.c_void_p()
            try:
                with self._lock:
                    status = lib.glm_chat_complete(self._handle, body, callback, None, _c.byref(out))
                    if out:
                        take_string(out)
                    if status != 0 and not (stop.is_set() and status == CancelledError.status):
                        check(status)
            except BaseException as error:  # handed to the consumer
                errors.append(error)
            finally:
                chunks.put(done)

        worker = threading.Thread(target=run, name="glm-chat-stream", daemon=True)
        worker.start()
        try:
            while True:
                chunk = chunks.get()
                if chunk is done:
                    break
                yield chunk
        finally:
            stop.set()
            worker.join()
        if errors:
            raise errors[0]

    def reset(self):
        with self._lock:
            check(lib.glm_chat_reset(self._handle))

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.glm_chat_free(handle)
