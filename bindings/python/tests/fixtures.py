"""Paths of the project's committed reference fixtures (Tests/Fixtures)."""
import json
import pathlib

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "Tests" / "Fixtures"


def jsonl(*parts):
    path = FIXTURES.joinpath(*parts)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def read_reference(path):
    """The arrays of a reference.safetensors fixture (F32/I32), read with plain numpy: the format is a JSON header
    and raw little-endian data."""
    import numpy as np

    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = {"F32": np.float32, "I32": np.int32}[info["dtype"]]
        begin, end = info["data_offsets"]
        out[key] = np.frombuffer(data[8 + n + begin:8 + n + end], dtype=dtype).reshape(info["shape"])
    return out

# The committed demo chat model (tools/make_demo_model.py) and the tool and question it was trained on.
DEMO_MODEL = FIXTURES / "models" / "glm-tiny-chat"
WEATHER_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
