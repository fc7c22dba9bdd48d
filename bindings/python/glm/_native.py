"""Loading libglm.so and turning its statuses into exceptions."""
import ctypes
import os
import pathlib

__all__ = ["lib", "check", "take_string", "GLMError"]


class GLMError(Exception):
    """A libglm call failed; `status` is the glm_status code, the message is glm_last_error()."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgumentError(GLMError, ValueError):
    status = 1


class GLMIOError(GLMError, OSError):
    status = 2


class FormatError(GLMError, ValueError):
    status = 3


class UnsupportedError(GLMError):
    status = 4


class GLMMemoryError(GLMError, MemoryError):
    status = 5


class CancelledError(GLMError):
    status = 6


class ContextFullError(GLMError):
    status = 7


class TemplateError(GLMError):
    status = 8


class LimitExceededError(GLMError):
    status = 9


class InternalError(GLMError):
    status = 10


_ERRORS = {cls.status: cls for cls in (
    InvalidArgumentError, GLMIOError, FormatError, UnsupportedError, GLMMemoryError, CancelledError,
    ContextFullError, TemplateError, LimitExceededError, InternalError)}


def _candidates():
    env = os.environ.get("GLM_LIBRARY")
    if env:
        yield pathlib.Path(env)
        return
    here = pathlib.Path(__file__).resolve().parent
    yield here / "libglm.so"
    # A source checkout: bindings/python/glm -> repository root.
    for parent in here.parents:
        candidate = parent / "build" / "lib" / "libglm.so"
        if candidate.exists():
            yield candidate
            return


def _load():
    tried = []
    for path in _candidates():
        tried.append(str(path))
        if path.exists():
            return ctypes.CDLL(str(path))
    raise ImportError("libglm.so not found (tried: %s); build it with `make` or set GLM_LIBRARY"
                      % (", ".join(tried) or "nothing"))


lib = _load()

_c = ctypes
lib.glm_last_error.restype = _c.c_char_p
lib.glm_last_error.argtypes = []
lib.glm_status_name.restype = _c.c_char_p
lib.glm_status_name.argtypes = [_c.c_int]
lib.glm_version.restype = _c.c_char_p
lib.glm_version.argtypes = []
lib.glm_api_version.restype = _c.c_int32
lib.glm_api_version.argtypes = []
lib.glm_free.restype = None
lib.glm_free.argtypes = [_c.c_void_p]
lib.glm_set_default_threads.restype = _c.c_int
lib.glm_set_default_threads.argtypes = [_c.c_int32]
lib.glm_default_threads.restype = _c.c_int32
lib.glm_default_threads.argtypes = []
lib.glm_system_info.restype = _c.c_int
lib.glm_system_info.argtypes = [_c.POINTER(_c.c_void_p)]


def check(status):
    """Raises the GLMError subclass for a non-zero status, with glm_last_error() as the message."""
    if status != 0:
        message = lib.glm_last_error().decode("utf-8", "replace")
        raise _ERRORS.get(status, GLMError)(message, status)


def take_string(pointer):
    """Copies a library-allocated `char *` into a Python str and frees it."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode("utf-8")
    finally:
        lib.glm_free(pointer)


def encode(text, name, allow_nul=False):
    """UTF-8 bytes of `text` for a C string argument. A NUL character is refused: the library would read the
    string only up to it. `allow_nul` is for arguments passed with their length (glm_tokenize's text)."""
    if not isinstance(text, str):
        raise TypeError("%s must be a str, not %s" % (name, type(text).__name__))
    if not allow_nul and "\0" in text:
        raise InvalidArgumentError("%s contains a NUL character (at index %d); libglm takes NUL-terminated strings"
                                   % (name, text.index("\0")), InvalidArgumentError.status)
    return text.encode("utf-8", "surrogatepass")


def dumps(value):
    """JSON for the library: UTF-8, no ASCII escaping (lone surrogates pass through to be rejected there)."""
    import json
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
