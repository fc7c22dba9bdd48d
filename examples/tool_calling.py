"""The model's tool call executed in Python, the result sent back as a `tool` message, the loop continued.

    python3 examples/tool_calling.py [MODEL_DIR]

Defaults to the tiny GLM-4 MoE model committed under Tests/Fixtures/models/glm-tiny-chat (trained to call
get_weather for a weather question). Streams the reasoning and the answer as they are generated.
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bindings" / "python"))
import glm  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def get_weather(city):
    return {"city": city, "temperature": 18, "condition": "sunny"} if city == "Paris" else {"error": "unknown city"}


def main():
    root = pathlib.Path(__file__).resolve().parents[1]
    model = glm.Model(sys.argv[1] if len(sys.argv) > 1 else root / "Tests/Fixtures/models/glm-tiny-chat")
    session = model.session(2048)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    print("[user]", messages[0]["content"])
    for _ in range(4):
        message = {"role": "assistant", "content": "", "reasoning_content": "", "tool_calls": []}
        finish = None
        section = None
        for chunk in session.chat(messages, tools=TOOLS, stream=True, temperature=0, max_tokens=256):
            if not chunk.get("choices"):
                continue
            choice = chunk["choices"][0]
            delta = choice["delta"]
            for field, label in (("reasoning_content", "[thinking] "), ("content", "[answer] ")):
                if delta.get(field):
                    if section != field:
                        print("\n" + label if section else label, end="")
                        section = field
                    message[field] += delta[field]
                    print(delta[field], end="", flush=True)
            for call in delta.get("tool_calls", []):
                if "id" in call:
                    message["tool_calls"].append({"id": call["id"], "type": "function",
                                                  "function": {"name": call["function"]["name"], "arguments": ""}})
                    print("\n[tool call]", call["function"]["name"], end=" ")
                    section = "tool_calls"
                piece = call.get("function", {}).get("arguments")
                if piece:
                    message["tool_calls"][call["index"]]["function"]["arguments"] += piece
                    print(piece, end="", flush=True)
            finish = choice.get("finish_reason") or finish
        print("\n[finish]", finish)
        messages.append(message)
        if finish != "tool_calls":
            return 0
        for call in message["tool_calls"]:
            result = get_weather(**json.loads(call["function"]["arguments"]))
            print("[tool result]", result)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
    return 1


if __name__ == "__main__":
    sys.exit(main())
