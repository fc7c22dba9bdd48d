"""glm.quantize: GGUF → GGUF with llama-quantize's recipes (glm_quantize)."""
import ctypes
import os

from ._native import lib, check, encode, CancelledError

_c = ctypes

_PROGRESS = _c.CFUNCTYPE(_c.c_bool, _c.c_uint64, _c.c_uint64, _c.c_char_p, _c.c_void_p)


class _QuantizeParams(_c.Structure):
    _fields_ = [("size", _c.c_uint32), ("type", _c.c_char_p), ("threads", _c.c_int32),
                ("allow_requantize", _c.c_bool), ("progress", _PROGRESS), ("user_data", _c.c_void_p)]


lib.glm_quantize_default_params.restype = _QuantizeParams
lib.glm_quantize_default_params.argtypes = []
lib.glm_quantize.restype = _c.c_int
lib.glm_quantize.argtypes = [_c.c_char_p, _c.c_char_p, _c.POINTER(_QuantizeParams)]


def quantize(src, dst, type, threads=None, progress=None, allow_requantize=False):
    """Writes the GGUF model `src` (a file or any part of a split set) to the GGUF file `dst` as llama.cpp's file
    type `type` ("Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", ..., "F16", "BF16", "F32"), with
    llama-quantize's per-tensor recipe; without an importance matrix the bytes equal `llama-quantize src dst type`'s.
    `src` may also be a Hugging Face checkpoint directory (config.json + safetensors; BF16, F16, F32 or FP8): the
    result is what llama.cpp's convert_hf_to_gguf.py followed by llama-quantize writes (same tensors and data; the
    converter's name-heuristic keys general.basename/finetune/version/size_label are not written), converted tensor
    by tensor without an intermediate file.

    `threads`: None = glm.default_threads(). `progress`: called as progress(bytes_done, bytes_total, tensor_name)
    after each slab; returning False cancels (CancelledError; the partial file is removed). An exception raised by
    `progress` cancels too and is re-raised here. `allow_requantize`: convert tensors that are already
    block-quantised (refused by default, as llama-quantize does)."""
    params = lib.glm_quantize_default_params()
    type_bytes = encode(type, "type")
    params.type = type_bytes
    params.threads = 0 if threads is None else int(threads)
    params.allow_requantize = bool(allow_requantize)
    raised = []
    if progress is not None:
        def on_progress(done, total, tensor, _user_data):
            try:
                return progress(done, total, tensor.decode("utf-8", "replace")) is not False
            except BaseException as e:  # noqa: BLE001 (re-raised after the call returns)
                raised.append(e)
                return False
        callback = _PROGRESS(on_progress)
        params.progress = callback
    status = lib.glm_quantize(encode(os.fspath(src), "src"), encode(os.fspath(dst), "dst"), _c.byref(params))
    if raised:
        raise raised[0]
    check(status)
