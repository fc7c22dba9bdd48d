"""A copy of a model directory with an MTP layer added (for tests of speculative decoding on glm-tiny-chat, which
has none): the MTP decoder layer is a copy of the last (MoE) layer, eh_proj passes the hidden half through (plus a
little of the token embedding), the norms are ones, and embed_tokens/shared_head.head fall back to the main model's
(docs/MODEL.md §3.9). Its drafts are poor but real MTP drafts through the whole stack."""
import json
import shutil
import struct

import numpy as np


def read_safetensors(path):
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = (info["dtype"], info["shape"], data[base + start:base + end])
    return tensors


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def with_mtp_layer(source, directory):
    """Writes `source` (a model directory without MTP) plus an MTP layer into `directory`."""
    for f in source.iterdir():
        if f.name != "model.safetensors" and f.is_file():
            shutil.copy(f, directory / f.name)
    config = json.loads((source / "config.json").read_text())
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    config["num_nextn_predict_layers"] = 1
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    tensors = read_safetensors(source / "model.safetensors")
    prefix = f"model.layers.{layers - 1}."
    mtp = f"model.layers.{layers}."
    for name, value in list(tensors.items()):
        if name.startswith(prefix):
            tensors[mtp + name[len(prefix):]] = value
    ones = np.ones(hidden, dtype=np.float32).tobytes()
    combine = np.zeros((hidden, 2 * hidden), dtype=np.float32)
    combine[:, hidden:] = np.eye(hidden, dtype=np.float32)
    combine[:, :hidden] = 0.1 * np.eye(hidden, dtype=np.float32)
    tensors[mtp + "enorm.weight"] = ("F32", [hidden], ones)
    tensors[mtp + "hnorm.weight"] = ("F32", [hidden], ones)
    tensors[mtp + "eh_proj.weight"] = ("F32", [hidden, 2 * hidden], combine.tobytes())
    tensors[mtp + "shared_head.norm.weight"] = ("F32", [hidden], ones)
    write_safetensors(directory / "model.safetensors", tensors)
    return directory
