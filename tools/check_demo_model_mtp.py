#!/usr/bin/env python3
"""The numbers of a model made by tools/make_demo_model_mtp.py (Tests/Fixtures/models/glm-tiny-tools), as libglm computes them (the
trainer reports the same with transformers and the NumPy reference):

    python3 tools/check_demo_model_mtp.py [MODEL_DIR]

  * exact tool name and arguments, greedy (temperature 0) through libglm's chat API, on the held-out prompts that
    make_demo_model_mtp.py listed in training_report.json (argument values never trained on; then new phrasings too);
  * MTP draft acceptance at temperature 0 on the demo conversations of greedy.json: the fraction of completion
    positions where the argmax of libglm's MTP draft equals the next token of transformers' greedy completion.

Needs libglm built (`make lib`) and numpy.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import glm  # noqa: E402


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Tests", "Fixtures", "models", "glm-tiny-tools")
    with open(os.path.join(path, "training_report.json")) as f:
        report = json.load(f)
    with open(os.path.join(path, "greedy.json")) as f:
        cases = json.load(f)["cases"]
    # The tool definitions as the demo requests send them.
    tools_by_name = {}
    for case in cases:
        for t in case["request"].get("tools", []):
            tools_by_name[t["function"]["name"]] = t
    tools_by_name.update({t["function"]["name"]: t for t in report["tools"]})
    sets = {label: [(p["messages"], [tools_by_name[n] for n in p["tools"]],
                     (p["expected"]["name"], p["expected"]["arguments"])) for p in report[label]["set"]]
            for label in ("heldout_values", "heldout_values_and_phrasings")}
    model = glm.Model(path)
    for label, prompts in sets.items():
        correct = 0
        for messages, tools, (name, arguments) in prompts:
            response = model.chat(messages, tools=tools, temperature=0, max_tokens=160)
            calls = response["choices"][0]["message"].get("tool_calls") or []
            got = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]
            if got == [(name, arguments)]:
                correct += 1
            else:
                print(f"  {messages[0]['content']!r}: {got}")
        print(f"libglm tool calls, {label}: {correct}/{len(prompts)} exact ({100 * correct / len(prompts):.1f}%)")

    hits = total = 0
    for case in cases:
        prompt, completion = case["prompt_ids"], case["completion_ids"]
        seq = prompt + completion
        drafts = model.mtp_logits(seq).argmax(axis=-1)
        P, n = len(prompt), len(completion)
        ok = [int(drafts[t]) == seq[t + 2] for t in range(P - 1, P + n - 2)]
        hits += sum(ok)
        total += len(ok)
        print(f"  {case['name']}: {sum(ok)}/{len(ok)}")
    print(f"libglm MTP acceptance on the demo conversations: {hits}/{total} ({100 * hits / total:.1f}%)")


if __name__ == "__main__":
    main()
