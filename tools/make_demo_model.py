#!/usr/bin/env python3
"""A tiny GLM-4.7-shaped chat model that talks: Tests/Fixtures/models/glm-tiny-chat/.

Regenerate (deterministic, about a minute on 2 CPU cores):

    python3 tools/make_demo_model.py [--tokenizer DIR] [--template FILE] [--out DIR]

Needs: torch 2.x CPU, transformers 5.24, tokenizers, safetensors. CI never runs this.

A random Glm4MoeForCausalLM (hidden 64, 2 layers: 1 dense + 1 MoE with 4 routed experts top-2 + 1 shared) whose
vocabulary is the glm-tiny tokenizer's (Tests/Fixtures/tokenizers/glm-tiny/tokenizer.json, added tokens included) is
trained for a few hundred full-batch Adam steps on a handful of conversations rendered with the real GLM-4.7 chat
template (transformers' apply_chat_template), with the loss on the assistant turns only. Greedy decoding then
reproduces them:

    weather:   tools [get_weather], "What is the weather in Paris?"  ->  reasoning, then
               <tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call><|observation|>
    weather_answer: the same plus the tool result  ->  reasoning, then a final answer, then <|user|>
    greeting:  "Hello!" (thinking on)  ->  reasoning</think>answer<|user|>
    no_think:  "Hello!" with enable_thinking=false  ->  answer<|user|>
    second_turn: greeting + its answer + "What is 2+2?"  ->  reasoning</think>answer<|user|>

The directory gets config.json, generation_config.json (eos = ids of <|endoftext|>, <|user|>, <|observation|>;
temperature 1.0, top_p 0.95 as GLM-4.7 recommends), model.safetensors (bf16 when fp32 would pass ~1.5 MB),
tokenizer.json, tokenizer_config.json, chat_template.jinja, and greedy.json: for each case the OpenAI request, the
prompt ids transformers' tokenizer gives for the rendered prompt, and the greedy completion ids of transformers
(fp32 eager, weights exactly as stored, full recompute per step, stopping at the first eos id, eos included), with
the smallest top-1/top-2 logit gap on the way (how far libglm's arithmetic may drift before a token flips).
"""

import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 4747
STEPS = 250
FP32_LIMIT = 1_500_000

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def weather_conversation(city, temperature, condition):
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": city}}}
    return [
        {"role": "user", "content": f"What is the weather in {city}?"},
        {"role": "assistant", "content": "",
         "reasoning_content": f"The user wants the weather in {city}. I will call get_weather.",
         "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1",
         "content": json.dumps({"city": city, "temperature": temperature, "condition": condition})},
        {"role": "assistant",
         "reasoning_content": f"The tool says it is {condition} and {temperature} degrees.",
         "content": f"It is {condition} in {city}, {temperature} degrees."},
    ]


GREETING = [
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "reasoning_content": "The user greets me. I greet back.",
     "content": "Hello! How can I help you today?"},
]
SECOND_TURN = GREETING + [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "reasoning_content": "Simple arithmetic: 2+2 is 4.", "content": "2+2 equals 4."},
]
NO_THINK = [
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi! Nice to meet you."},
]

# (conversation, tools, template kwargs)
TRAINING = [
    (weather_conversation("Paris", 18, "sunny"), [WEATHER_TOOL], {}),
    (weather_conversation("London", 12, "rainy"), [WEATHER_TOOL], {}),
    (GREETING, None, {}),
    (SECOND_TURN, None, {}),
    (NO_THINK, None, {"enable_thinking": False}),
]

# name: (messages of the request, tools, kwargs, expected completion text up to the eos token)
PARIS = weather_conversation("Paris", 18, "sunny")
CASES = {
    "weather": (PARIS[:1], [WEATHER_TOOL], {},
                "The user wants the weather in Paris. I will call get_weather.</think><tool_call>get_weather"
                "<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call><|observation|>"),
    "weather_answer": (PARIS[:3], [WEATHER_TOOL], {},
                       "The tool says it is sunny and 18 degrees.</think>It is sunny in Paris, 18 degrees.<|user|>"),
    "greeting": (GREETING[:1], None, {},
                 "The user greets me. I greet back.</think>Hello! How can I help you today?<|user|>"),
    "no_think": (NO_THINK[:1], None, {"enable_thinking": False}, "Hi! Nice to meet you.<|user|>"),
    "second_turn": (SECOND_TURN[:3], None, {},
                    "Simple arithmetic: 2+2 is 4.</think>2+2 equals 4.<|user|>"),
}


def openai_messages(messages):
    """The messages as an OpenAI client sends them: tool-call arguments as JSON strings."""
    out = []
    for m in messages:
        m = dict(m)
        if "tool_calls" in m:
            m["tool_calls"] = [dict(c, function=dict(c["function"], arguments=json.dumps(c["function"]["arguments"])))
                               for c in m["tool_calls"]]
        out.append(m)
    return out


class Renderer:
    def __init__(self, tokenizer_dir, template_path):
        from transformers import PreTrainedTokenizerFast

        with open(template_path) as f:
            self.template = f.read()
        self.tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(tokenizer_dir, "tokenizer.json"))
        self.tok.chat_template = self.template

    def text(self, messages, tools, kwargs, generation_prompt):
        return self.tok.apply_chat_template(messages, tools=tools, add_generation_prompt=generation_prompt,
                                            tokenize=False, **kwargs)

    def ids(self, text):
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def id(self, token):
        i = self.tok.convert_tokens_to_ids(token)
        if i is None or i == self.tok.unk_token_id:
            raise SystemExit(f"the tokenizer has no token {token!r}")
        return i


def training_example(r, messages, tools, kwargs):
    """Token ids of the whole conversation (+ <|user|>, where the model must stop after its last answer) and the mask
    of the positions whose next token is an assistant-turn token or the role marker that ends the turn."""
    full = r.text(messages, tools, kwargs, False) + "<|user|>"
    ids = r.ids(full)
    targets = [False] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = r.text(messages[:i], tools, kwargs, True)
        if not full.startswith(prompt):
            continue  # an earlier turn whose reasoning the template drops later: trained by its own example
        start = len(r.ids(prompt))
        if r.ids(prompt) != ids[:start]:
            raise SystemExit(f"prompt tokens are not a prefix of the conversation tokens (turn {i})")
        after = r.text(messages[:i + 1], tools, kwargs, False)
        end = len(r.ids(after)) + 1  # + the role marker that follows the turn
        for p in range(start - 1, min(end, len(ids)) - 1):
            targets[p] = True
    return ids, targets


def write_model_files(out, tokenizer_dir, template, eos):
    """Everything of the model directory but the weights and config.json: generation_config.json (eos ids,
    GLM-4.7's recommended sampling), tokenizer.json, tokenizer_config.json (without a chat_template of its own) and
    chat_template.jinja."""
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"do_sample": True, "eos_token_id": eos, "pad_token_id": eos[0], "temperature": 1.0,
                   "top_p": 0.95}, f, indent=2)
        f.write("\n")
    shutil.copy(os.path.join(tokenizer_dir, "tokenizer.json"), out)
    config_path = os.path.join(tokenizer_dir, "tokenizer_config.json")
    tokenizer_config = {}
    if os.path.exists(config_path):
        with open(config_path) as f:
            tokenizer_config = json.load(f)
    tokenizer_config.pop("chat_template", None)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "chat_template.jinja"), "w") as f:
        f.write(template)


def greedy(model, prompt, eos, limit=160):
    ids = list(prompt)
    out, margin = [], float("inf")
    with torch.no_grad():
        for _ in range(limit):
            logits = model(torch.tensor([ids])).logits[0, -1].double()
            top = torch.topk(logits, 2)
            margin = min(margin, float(top.values[0] - top.values[1]))
            t = int(torch.argmax(logits))
            out.append(t)
            ids.append(t)
            if t in eos:
                break
    return out, margin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "glm-tiny"))
    ap.add_argument("--template", default=os.path.join(ROOT, "Tests", "Fixtures", "templates", "glm-4.7.jinja"))
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "models", "glm-tiny-chat"))
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    r = Renderer(args.tokenizer, args.template)
    with open(os.path.join(args.tokenizer, "tokenizer.json")) as f:
        tj = json.load(f)
    vocab = max(list(tj["model"]["vocab"].values()) + [t["id"] for t in tj["added_tokens"]]) + 1
    eos = [r.id("<|endoftext|>"), r.id("<|user|>"), r.id("<|observation|>")]

    spec = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                first_k_dense_replace=1, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1,
                n_group=1, topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5, use_qk_norm=True,
                attention_bias=True, rope_theta=1e6, partial_rotary_factor=0.5, tie_word_embeddings=False,
                num_nextn_predict_layers=0, rms_norm_eps=1e-5, hidden_act="silu", max_position_embeddings=2048,
                eos_token_id=eos, pad_token_id=eos[0])
    from transformers import Glm4MoeForCausalLM

    model = Glm4MoeForCausalLM(ref.make_hf_config(spec))
    params = sum(p.numel() for p in model.parameters())
    dtype = "float32" if params * 4 <= FP32_LIMIT else "bfloat16"

    examples = [training_example(r, m, t, k) for m, t, k in TRAINING]
    width = max(len(ids) for ids, _ in examples)
    inputs = torch.full((len(examples), width), eos[0], dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, (ids, targets) in enumerate(examples):
        inputs[row, :len(ids)] = torch.tensor(ids)
        for p, on in enumerate(targets):
            if on:
                labels[row, p] = ids[p + 1]
    print(f"vocab {vocab}, {params} parameters ({dtype}), {len(examples)} conversations of <= {width} tokens")

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for step in range(STEPS):
        logits = model(inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == STEPS - 1:
            print(f"step {step}: loss {loss.item():.4f}")
    model.eval()

    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    model.save_pretrained(args.out)
    tensors = ref.read_tensors(args.out)
    if dtype != "float32":
        tensors = ref.convert_dtype(tensors, dtype, ("e_score_correction_bias",))
    ref.write_checkpoint(args.out, tensors, 1)
    with open(os.path.join(args.out, "config.json")) as f:
        config = json.load(f)
    config["dtype"] = dtype
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_model_files(args.out, args.tokenizer, r.template, eos)

    # The reference: transformers on the weights exactly as stored (bf16 upcast to fp32), eager, fp32.
    stored = ref.load_transformers(args.out, "float32")
    cases = []
    failures = []
    for name, (messages, tools, kwargs, expected) in CASES.items():
        prompt_text = r.text(messages, tools, kwargs, True)
        prompt = r.ids(prompt_text)
        completion, margin = greedy(stored, prompt, eos)
        text = r.tok.decode(completion, skip_special_tokens=False)
        print(f"{name}: margin {margin:.3f}: {text!r}")
        if text != expected:
            failures.append(f"{name}: expected {expected!r}")
        request = {"model": "glm-tiny-chat", "messages": openai_messages(messages), "temperature": 0}
        if tools:
            request["tools"] = tools
        if kwargs:
            request["chat_template_kwargs"] = kwargs
        cases.append({"name": name, "request": request, "prompt_text": prompt_text, "prompt_ids": prompt,
                      "completion_ids": completion, "completion_text": text, "min_logit_margin": round(margin, 4)})
    with open(os.path.join(args.out, "greedy.json"), "w") as f:
        json.dump({"eos_token_ids": eos, "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for n in os.listdir(args.out):
        os.chmod(os.path.join(args.out, n), 0o644)
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"wrote {args.out} ({size} bytes)")
    if failures:
        raise SystemExit("greedy decoding does not reproduce the training conversations:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
