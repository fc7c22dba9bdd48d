"""Paths of the project's committed reference fixtures (Tests/Fixtures)."""
import json
import pathlib

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "Tests" / "Fixtures"


def jsonl(*parts):
    path = FIXTURES.joinpath(*parts)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]

# The committed demo chat model (tools/make_demo_model.py) and the tool and question it was trained on.
DEMO_MODEL = FIXTURES / "models" / "glm-tiny-chat"
WEATHER_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
