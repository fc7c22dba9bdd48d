#!/usr/bin/env python3
"""Tests/Fixtures/models/glm-tiny-tools: a tiny GLM-4.7-shaped chat model that calls three tools with arguments copied
from the user's message, with a trained MTP layer (issue 15, item 4; the successor of tools/make_demo_model.py's
glm-tiny-chat, which stays as the tests' chat fixture and the source of the GGUF fixtures).

The committed model (this script with its defaults, 2026-12-07, 23.5 minutes on one core of an AMD EPYC Zen 5):
held-out tool calls (argument values never trained on) 50/60 exact (83.3 %; the goal is 90 %: not reached yet, see
item 7 below for what fails), 16/30 with phrasings never trained on too; the same counts through libglm; the five
fixed conversations of make_demo_model.py reproduced; MTP argmax = the main model's next greedy token at 134/134
positions of the demo conversations and at 97.8 % of the held-out completions' positions (k = 1: 96 % of libglm's
drafts accepted on the 95 benchmark requests, BENCHMARKS.md). The run exits with an error while the held-out accuracy
is under 90 %, after writing everything.

What was tried and measured (machine: 2 vCPUs shared with other helpers' builds, load average 2-6; torch 2.13 CPU):

1. Training forward. transformers' eager Glm4Moe code loops over experts in Python: a step cost ~1.5-1.8 s wall
   whatever the batch, so the first two attempts got ~300 steps and no copying. This script now trains FastGLM
   (below), docs/MODEL.md §3 and §3.9 written as batched torch code, the MoE evaluated densely over all routed experts
   with zero weight for the unselected ones (the same function as §3.6: sigmoid router, correction bias for selection
   only, top-k, normalised, x routed_scaling_factor, plus the shared expert). `--self-check` compares it on a random
   O(1)-scale checkpoint (three right-padded sequences of 57/40/23 tokens): main logits against transformers'
   Glm4MoeForCausalLM (fp32, eager) max |diff| 3.1e-6 (logits up to 4.6) with QK-norm, 4.1e-6 without; MTP logits
   against the float64 NumPy reference (glm_reference.numpy_mtp) 5.3e-6 / 4.6e-6. transformers still makes
   greedy.json and the held-out accuracies (on the stored bf16 weights); the NumPy reference the MTP acceptance.
2. Threads. With 2 torch threads on the loaded machine a step of 32 x 56 tokens took 9 s (OpenMP threads waiting for
   a descheduled peer at every op); with 1 thread 0.57 s (mm 54 %, most of it the 4292 x 128 lm_head on the loss
   rows). THREADS = 1: robust to the shared machine, and what the bit-reproducibility is stated for.
3. Copy-only diagnostic (tools/demo_copy_diagnostic.py: "Repeat: X" conversations alone, batch 32, lr 2e-3, warmup
   100, no MTP; run before PSEUDO existed, so the values came from the real-city and word pools): 0.48 s a step;
   loss (means per 100 steps) 4.94, 2.12, ..., 0.81 (601-700), 0.30 (901-1000), 0.096 (1101-1200), but 0/20
   held-out payloads exact at steps 250, 500, 750, 1000, 1250: "Repeat: Porto" -> "Powait", later "Paris";
   "Seville, ..." -> "Seattle" / "Seoul". The model learned the ~200-city pool (first token copied, the rest
   completed from memory) instead of a copy circuit. Hence PSEUDO: half the training cities and query words are now
   made-up words (Pools.pseudo_word), which only copying can reproduce; the held-out values stay real cities and
   real words.
   The same diagnostic with PSEUDO (`demo_copy_diagnostic.py 2400 probe=250 n=12000`, 2026-12-07 02:00-02:24,
   1,272 s CPU, 1,397 s wall): loss 5.24 (1-100), 2.39 (401-500), 1.72 (901-1000), 1.44 (1201-1300), then a drop:
   0.79 (1401-1500), 0.37 (1601-1700), 0.20 (1901-2000), 0.11 (2301-2400); held-out payloads (real cities never
   trained on, new numbers) exact 0/20 at 250-1250, 2/20 at 1500, 7/20 at 1750, 10/20 at 2000 and 2250, 11/20 at
   the end (numbers first: "416.6" copied right at 1000, cities later). So a copy (induction) circuit does form in
   this model, after ~1,300 steps of 32 short conversations (~12 CPU minutes): the full run's 600 mixed steps stop
   before that transition.
4. Full run (this configuration, `nice -n 5 python3 tools/make_demo_model_mtp.py`, 2026-12-07 01:22-02:00 UTC):
   19,200 conversations, 2.81 M tokens (3,000 tool, 16,000 copy, 200 fixed), data ready after 66 CPU s; 600 steps of
   32 at lr 2e-3 (about 2.4 CPU s a step): training 1,450 s CPU, 1,843 s wall (load average 4.7 at the start, 2.3
   at the end: two Swift builds and a nice-0 quantize job shared the cores). Loss means per 100 steps (main / MTP /
   context): 5.49/5.48/5.69, 3.26/3.15/3.45, 2.48/2.27/2.71, 2.37/1.58/2.53, 2.25/1.01/2.46, 2.29/0.81/2.52.
   Held-out exact tool calls (bf16 weights as stored): 0/60 with trained phrasings and 0/30 with new phrasings in
   transformers, and the same 0/60 and 0/30 through libglm (tools/check_demo_model_mtp.py). The calls have the
   template right and mostly the right tool, but made-up values ("What is the weather in Seville?" -> city
   "Cazzza"; "What is the product of 65 and 8621?" -> operation "add", a 76.6): no copy circuit in 600 steps. The
   five fixed conversations are not reproduced either (the run ends with that error). MTP at temperature 0 (float64
   reference; libglm's drafts agree, 188/288 on the demo conversations): the draft is the main model's next greedy
   token at 65.3 % of the demo-conversation positions (k = 1 speculative: 109/179 drafts accepted, 1.59 tokens per
   main forward) and at 74.0 % on the held-out tool prompts (1,112/1,650, 1.64).
   Reproducibility: two `--steps 3 --weights-only` runs wrote identical model.safetensors (sha256 25d7f17f...).

5. Curriculum run, `python3 tools/make_demo_model_mtp.py --copy-steps 1500 --steps 375` (2026-12-07 03:51-04:17
   UTC; the other core ran the lead's kernel benchmarks): 1,500 copy-only steps (0.45 s each), then 375 steps of the
   mix (2.3 s each); training 1,465 s wall, 1,350 s CPU (25 min 55 s for the whole script, 20 min 41 s user).
   The copy phase ended at loss 1.34 (means over steps 1401-1500), where the copy diagnostic of item 3 was at 0.79
   and falling: train() gives each phase its own cosine schedule, so this phase's learning rate had decayed to ~30 %
   of LR by step 1,200, during the window (1,300-1,500 steps) where the diagnostic's copy circuit formed with the
   rate still at ~65 %. Result: 0/60 and 0/30 held-out tool calls exact again (right template, invented values), the
   fixed conversations not reproduced; the MTP layer, trained only in the mix, agrees with the main model's next
   greedy token at 87.2 % of the demo-conversation positions (k = 1: 63/73 drafts accepted, 1.77 tokens per main
   forward) and 74.6 % on the held-out tool prompts (1,386/2,003 accepted, 1.66).

6. The same command with the copy phase at constant LR after its warmup (this file's default since; 2026-12-07
   04:33-05:04 UTC, the lead's builds and benchmarks on the other core): training 1,755 s wall, 1,529 s CPU (30 min
   45 s for the whole script: over the 30-minute budget on the shared machine). The copy circuit formed this time:
   copy loss (means per 100 steps) 1.64 (901-1000), 0.92, 0.47, 0.28, 0.17, 0.13 (1401-1500). But the 375 mixed steps
   did not carry it into tool calls: 1/60 and 0/30 held-out calls exact; "What is the weather in Paris?" gives city
   "Laris", and two fixed conversations end in stray tool-call tags. The MTP layer agrees with the main model's next
   greedy token at 88.4 % of the demo-conversation positions (k = 1: 51/64 accepted, 1.70 tokens per main forward)
   and 84.6 % on the held-out tool prompts (1,522/1,903 accepted, 1.76).

7. Three changes (2026-12-07 18:06-18:30 UTC, this machine otherwise idle: 2 vCPUs of an AMD EPYC Zen 5):
   (a) the tool prompt once per step: minibatches group conversations offered the same tools, and step_losses runs
   that shared prefix (~400 of a tool conversation's ~540 tokens) once, as a batch of one whose keys and values
   every conversation attends to (the same function: --self-check compares it with the full sequences, bit-equal
   losses here); a step of 32 whole tool conversations 5.5 s -> 1.4 s;
   (b) CALLS first turns alone (request -> reasoning -> tool call -> <|observation|>), the copying skill in the
   position it must work in, at half a whole conversation's tokens; COPY_EXAMPLES down to 8,000;
   (c) one schedule, warmup-stable-decay: constant LR until the last DECAY = 30 % of the steps, then cosine.
   2,200 steps of 32 (0.6 s each), whole script 23.5 min. Copying appeared in the mix at ~1,500 steps (loss means
   per 100 steps 1.03 at 1,401-1,500, 0.49, 0.30, 0.19, 0.14, 0.08, 0.06, 0.05); held-out tool calls 50/60 (83.3 %)
   and 16/30 with new phrasings, the same counts through libglm; all five fixed conversations reproduced; MTP
   argmax = next greedy token at 134/134 demo positions and 97.8 % of the held-out completions' positions.
   Failures: held-out cities copied for their first pieces then completed from the learned syllable distribution
   ("Kyoto" -> "Kymo", "Kolkata" -> "Kolkmin"), "Hong Kong" -> "Hong", a repeated word looped or dropped.
8. rope_theta 1e4 instead of 1e6 (the copy diagnostic alone formed copying ~500 steps earlier with it: 10/20
   held-out payloads at 1,500 steps vs 2/20): in the mix it was later instead (loss 1.07 at step 1,700 vs 0.31);
   stopped at 1,700.
9. 2,400 steps (run alongside 8 until its stop): 51/60 (85.0 %), 12/30, one fixed conversation not reproduced,
   the same kind of failures ("Kyoto" -> "Kywin", "Kolkata" -> "Kolkpos", "Hong Kong" -> "Hong"). More steps of the
   same data do not fix them.
10. Random-letter made-up words (half of them) and more two- and three-word made-up cities, so that no learned
   syllable distribution could complete a copied prefix: copying formed later in the mix (probe 3/9 at step
   2,000), 36/60 at 2,400 steps; the same with 15,000 first turns instead of 9,000: 5/60 (no copying by 2,400).
   LR 3e-3 on this file's data: no copying by step 1,400 (loss 1.44 where LR 2e-3 had 1.03 at 1,500); stopped.
11. CITY_PSEUDO 0.8 (more made-up cities, fewer real ones to memorise): copying later again (loss 1.13 at step
   1,700), 32/60.
12. Reproduction: this file with its defaults (item 7's configuration), run again alongside item 11, wrote a
   model.safetensors with the same sha256 (744dae06...), every loss line equal; 23.9 min for the whole script.
13. DEMO_TIE=1 (2026-12-07 20:50-21:20 UTC, 2 vCPUs of an AMD EPYC Zen 4, builds on the other core): lm_head
   trained as the embedding itself (1.25 M trained parameters), on the idea that a copied token's own embedding
   then scores it. Copying formed later (loss 0.95 at step 1,700, 0.35 at 1,900, vs 0.31 and 0.14 untied) and the
   run ended at 38/60 held-out (13/30 new phrasings); MTP agreement 97.0 % of held-out positions.
14. DEMO_ARGW=3 and DEMO_ARGW=6 (2026-12-07 21:15-21:40 UTC, the two side by side): the main and MTP losses weight
   the rows whose label lies inside <arg_value> ... </arg_value> (the copied text) 3 or 6 times. No copying by step
   1,800 in either (probe 0/9: "Porto" -> "Sapporo", "Povo"), where the unweighted run had formed it at ~1,500:
   stopped there. Pushing the gradient onto the copied tokens before the copy circuit exists teaches the model to
   guess them from its priors harder, which delays the circuit.
15. DEMO_BATCH=16 with 4,000 steps, at LR 2e-3 and at 1.4e-3 (2026-12-07 21:41-22:00 UTC, side by side; 0.35 s a
   step): copying had not formed by step 3,000 (loss 1.15 and 1.02, probes 2/9 and 1/9), about where a batch of 32
   stands at step 1,500 on the same number of conversations: the transition follows the tokens seen, not the
   number of updates. Stopped at 3,000.
16. On Zen 4 (this session's machine, family 25 model 17) a one-thread step of 32 takes 0.76 s (Zen 5: 0.6 s), so
   the defaults' 2,200 steps would not fit 30 minutes here; two torch threads (DEMO_THREADS=2, idle machine) take
   0.44 s (1.73x), and two runs of 20 steps at 2 threads wrote the same bytes (sha256 224ace37...).
17. DEMO_THREADS=2 DEMO_STEPS=3200 (2026-12-07 22:03-22:23 UTC, idle machine, 0.41 s a step): the same data and
   order as the defaults, decay from step 2,240 instead of 1,540, arithmetic summed in another order (2 threads).
   No sharp copy transition by step 2,900 (loss 1.24 at 1,901-2,000, 0.90 at 2,201-2,300, then 0.83-0.81, where
   the default run fell to 0.05); probe 1/9 at 2,800; stopped. In the default run the drop (1.03 -> 0.49) came
   right as its decay began (step 1,540), in this one the loss also fell fastest just after its decay began: the
   transition may need the rate to come down, not only enough tokens, and it is fragile (a change of summation
   order moved it by 800+ steps).
18. DEMO_DECAY=0.5 (decay from step 1,100; 2026-12-07 22:34-23:03 UTC, CI ran on the other core for the first 10
   minutes): copying formed at ~1,500 again (loss 1.22 at 1,301-1,400, 0.56 at 1,501-1,600, 0.09 at 2,001-2,100),
   not earlier, but at a lower rate after it: 41/60 held-out (11/30 new phrasings), MTP agreement 95.3 % of
   held-out positions. So the transition is not triggered by the decay; the rate after it matters.

What the numbers say: copying forms in this model after ~1,300-1,500 steps of 32 copy-rich conversations at an
undecayed learning rate, and the time to that transition moves with every change of the data (items 8, 10), so a
30-minute budget leaves ~700 steps after it. Those steps bring numbers and search strings to 18/20
exact each, cities to 14/20: a real city's later pieces still come from what the model learnt about names ("Montevideo"
-> "Montemp") more than from the message. Not tried yet: a copy head primed by a curriculum of random-token
copying before any language (the cheapest copy steps), a model with more heads, more training cities per step.

Run (same bytes on every run on one machine, by construction: seeded data and init, fixed data order, torch
deterministic algorithms on THREADS = 1 thread; --steps 3 --weights-only twice is the quick check):

    python3 tools/make_demo_model_mtp.py [--tokenizer DIR] [--template FILE] [--out DIR] [--steps N]
    python3 tools/make_demo_model_mtp.py --evaluate-only   # greedy.json, training_report.json from the checkpoint
    python3 tools/make_demo_model_mtp.py --self-check     # the training forward against the references
    python3 tools/check_demo_model_mtp.py DIR      # the same numbers through libglm

Needs: torch 2.13 CPU (`pip install "torch==2.13.0+cpu"`), transformers 5.24, tokenizers, safetensors, numpy.
CI never runs this.

The model: a Glm4MoeForCausalLM (hidden 128, 3 layers: 1 dense + 2 MoE with 4 routed experts top-2 + 1 shared,
4 query / 2 KV heads of 32, partial RoPE) whose vocabulary is the glm-tiny tokenizer's
(Tests/Fixtures/tokenizers/glm-tiny/tokenizer.json, added tokens included), plus one MTP ("NextN") layer at index 3
as GLM-4.7 has (docs/MODEL.md §2.4, §3.9): enorm, hnorm, eh_proj, a full MoE decoder layer and shared_head.norm;
its embedding and head are the main model's (the checkpoint leaves `embed_tokens` and `shared_head.head` out, which
libglm reads as sharing). It is trained as FastGLM (this file) and written as that checkpoint; the MTP layer's
e_score_correction_bias stays zero (GLM updates it by a load-balancing rule, not by gradients).

Training: AdamW (betas 0.9/0.98, warmup WARMUP steps, constant LR, then cosine to 10 % of LR over the last DECAY
share of the steps; gradient norm clipped at 1) on minibatches of 32 conversations rendered with the real GLM-4.7
chat template (transformers' apply_chat_template). A minibatch holds conversations offered the same tools, and the
shared part before the first <|user|> ([gMASK]<sop> and the tool prompt, ~400 of a tool conversation's ~540 tokens)
runs once per step as a batch of one whose keys and values every conversation attends to (step_losses; the same
function as the full sequences, --self-check compares them). Loss on the assistant turns: the main model's next-token
loss plus MTP_WEIGHT times the MTP layer's loss on the token after next (row t: the final-normed main hidden state at
t and the embedding of token t+1 predict token t+2, as GLM and DeepSeek-V3 train MTP; the gradient flows into the
main model too), plus CONTEXT_WEIGHT times the next-token loss on the other tokens from the first <|user|> on (user
messages and tool results repeat the arguments: copy signal). The data:

  * the five fixed conversations of tools/make_demo_model.py (weather in Paris / London, greeting, second turn,
    no_think), FIXED_REPEAT times each: the demo conversations of greedy.json;
  * GENERATED whole tool conversations (call, tool result, answer) for three tools -- get_weather(city),
    web_search(query) and calculator(operation, a, b) -- from phrasing templates with cities, quoted search strings
    and numbers drawn from pools (PSEUDO of the cities and query words made up), with a random subset and order of
    the tools in the system prompt;
  * CALLS first turns alone (request -> reasoning -> tool call -> <|observation|>): the copying in the position it
    must work in, at half a whole conversation's tokens;
  * COPY_EXAMPLES short "Repeat: X" conversations (1-3 values of the same kinds; 10 % with tools).

Everything is seeded; data order is fixed; torch runs deterministic algorithms on one thread.

Checks, on the weights exactly as stored (bf16 upcast to fp32); the run fails unless the first holds:

  * tool-call accuracy: exact tool name and arguments, greedy with transformers, on HELDOUT generated prompts whose
    argument values (cities, numbers, search strings) never occur in training (trained phrasings): >= 90 %; and on
    a second set that also uses phrasings never trained on (reported);
  * whether greedy decoding with transformers gives back the five fixed conversations (reported);
  * MTP draft acceptance at temperature 0: the fraction of completion positions where the MTP layer's argmax (NumPy
    float64 reference of docs/MODEL.md §3.9, tools/glm_reference.py) equals the main model's next greedy token, on
    the demo conversations of greedy.json and on the held-out prompts, and the acceptance a k = 1 speculative
    decoder would see (each accepted draft's successor is the verifier's bonus token and is not drafted).

The numbers go to stdout and to training_report.json in --out (without timings, so
that a rerun writes the same bytes; the wall and CPU time are printed).

The directory gets config.json, generation_config.json (eos = ids of <|endoftext|>, <|user|>, <|observation|>;
temperature 1.0, top_p 0.95 as GLM-4.7 recommends), model.safetensors (bf16, router correction bias f32),
tokenizer.json, tokenizer_config.json, chat_template.jinja, training_report.json and greedy.json: for each case the
OpenAI request, the prompt ids transformers' tokenizer gives for the rendered prompt, and the greedy completion ids
of transformers (fp32 eager, weights exactly as stored, full recompute per step, stopping at the first eos id, eos
included), with the smallest top-1/top-2 logit gap on the way (how far libglm's arithmetic may drift before a token
flips); and the MTP drafts of the float64 reference along prompt + completion: mtp_draft_ids[j] is the argmax of
draft row P-1+j (P prompt tokens), the draft for completion token j+1 (the last row drafts past the eos token), with
its top-1/top-2 margin in mtp_draft_margins.
"""

import argparse
import hashlib
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm_reference as ref  # noqa: E402
import make_demo_model as demo  # noqa: E402
from make_demo_model import Renderer, openai_messages, training_example  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 4747
STEPS = int(os.environ.get("DEMO_STEPS", 2200))
BATCH = int(os.environ.get("DEMO_BATCH", 32))
LR = float(os.environ.get("DEMO_LR", 2e-3))
WARMUP = 100
LAYERS = 3           # main decoder layers; the MTP layer is layer LAYERS
THREADS = int(os.environ.get("DEMO_THREADS", 1))  # torch threads: fixed, as bit-reproducibility needs (docstring)
MTP_WEIGHT = 0.5
ROPE_THETA = float(os.environ.get("DEMO_THETA", 1e6))
DECAY = float(os.environ.get("DEMO_DECAY", 0.3))  # share of the steps at the end over which the learning rate decays
QK_NORM_INIT = 2.5
GENERATED = int(os.environ.get("DEMO_GENERATED", 3000))  # whole generated tool conversations (call, result, answer)
CALLS = int(os.environ.get("DEMO_CALLS", 9000))           # generated first turns alone (request -> tool call)
FIXED_REPEAT = 40    # copies of each fixed conversation in the training pool
HELDOUT = 60         # held-out prompts with trained phrasings (20 per tool)
HELDOUT_PHRASING = 30
PSEUDO = 0.5         # share of training query words that are made-up words
CITY_PSEUDO = float(os.environ.get("DEMO_CITY_PSEUDO", 0.5))  # share of training cities that are made-up names
COPY_EXAMPLES = int(os.environ.get("DEMO_COPY", 8000))   # pure "Repeat: X" conversations (copying curriculum)
CONTEXT_WEIGHT = float(os.environ.get("DEMO_CTX", 0.25))  # loss weight of the non-assistant tokens
PROBE_EVERY = int(os.environ.get("DEMO_PROBE", 200))      # steps between quick held-out greedy probes (0: none)
ARG_WEIGHT = float(os.environ.get("DEMO_ARGW", 1.0))  # loss weight of tool-call argument values (copied text)
TIE = os.environ.get("DEMO_TIE", "0") == "1"  # train lm_head as the embedding itself (both written, equal)

ARG_VALUE_OPEN, ARG_VALUE_CLOSE = 4285, 4286   # <arg_value>, </arg_value> in the glm-tiny tokenizer (checked in main)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}
CALCULATOR_TOOL = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Add or multiply two numbers",
        "parameters": {"type": "object", "properties": {
            "operation": {"type": "string", "enum": ["add", "multiply"]},
            "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["operation", "a", "b"]},
    },
}
TOOLS = {"get_weather": WEATHER_TOOL, "web_search": SEARCH_TOOL, "calculator": CALCULATOR_TOOL}

TRAIN_CITIES = """Paris London Berlin Madrid Rome Vienna Prague Warsaw Lisbon Dublin Oslo Stockholm Helsinki
Copenhagen Amsterdam Brussels Zurich Geneva Munich Hamburg Milan Naples Athens Istanbul Cairo Nairobi Lagos Accra
Casablanca Tunis Dubai Doha Tehran Karachi Delhi Mumbai Chennai Dhaka Bangkok Hanoi Manila Jakarta Singapore Seoul
Tokyo Osaka Beijing Shanghai Taipei Sydney Melbourne Auckland Perth Toronto Montreal Vancouver Chicago Boston Seattle
Denver Miami Houston Dallas Atlanta Phoenix New_York Los_Angeles San_Francisco Mexico_City Lima Bogota Santiago
Buenos_Aires Caracas Quito Havana Reykjavik Edinburgh Glasgow Krakow Budapest Bucharest Sofia Belgrade Zagreb Riga
Vilnius Tallinn Kyiv Minsk Lyon Hanover Bergen Cork Malaga Bilbao Genoa Palermo Split Gdansk Leeds Bristol Cardiff
Belfast Nice Bordeaux Toulouse Cologne Dresden Leipzig Utrecht Antwerp Basel Salzburg Graz Ljubljana Sarajevo
Tirana Skopje Tbilisi Yerevan Baku Almaty Tashkent Ulaanbaatar Harbin Wuhan Chengdu Xian Hangzhou Sapporo Fukuoka
Incheon Cebu Penang Phuket Yangon Colombo Kathmandu Pune Jaipur Medan Surabaya Darwin Hobart Wellington
Christchurch Suva Honolulu Anchorage Quebec Winnipeg Halifax Austin Denver Tampa Orlando Memphis Boise Tucson
Cancun Guadalajara Medellin Cusco Recife Salvador Brasilia Rosario Cordoba Mendoza Valparaiso Kingston Nassau
Dakar Abuja Luanda Harare Lusaka Durban Cape_Town Windhoek Maputo Mombasa Kigali Khartoum Tripoli Algiers Muscat
Riyadh Jeddah Manama Kuwait Damascus""".split()
HELDOUT_CITIES = """Porto Seville Valencia Marseille Florence Turin Kyoto Nagoya Busan Hong_Kong Kolkata Lahore Kabul
Baghdad Beirut Amman Addis_Ababa Kampala Montevideo Asuncion La_Paz Ottawa Calgary Portland Detroit Nashville
Brisbane Adelaide Bratislava Marrakesh""".split()
SYLLABLE_STARTS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch",
                   "st", "tr", "sh", "gr", "pl", "kr", ""]
SYLLABLE_ENDS = ["", "", "", "n", "r", "l", "s", "m", "t", "k"]
CONDITIONS = ["sunny", "rainy", "cloudy", "windy", "snowy", "foggy", "stormy"]
WORDS = """best cheap pizza recipes hiking trails near me python tutorial jazz albums electric cars history of
solar panels vegan cake guitar lessons train tickets used bikes coffee shops movie reviews space news chess
openings garden tips winter boots learn spanish music festivals flights dog training ancient egypt laptop deals
healthy breakfast ideas quantum computing for beginners old maps rare books mountain weather running shoes
photo editing free fonts bread baking tea history ocean tides moon phases bird songs city parks region sport
data address lens long function conference video""".split()

WEATHER_ASK = ["What is the weather in {city}?", "What's the weather like in {city}?",
               "How is the weather in {city} today?", "Tell me the weather in {city}.",
               "Weather in {city}, please.", "Is it cold in {city} right now?"]
SEARCH_ASK = ['Search the web for "{query}".', 'Look up "{query}" online.', 'Can you search for "{query}"?',
              'Find information about "{query}".', 'Please search "{query}".']
ADD_ASK = ["What is {a} plus {b}?", "Add {a} and {b}.", "What is the sum of {a} and {b}?"]
MULTIPLY_ASK = ["What is {a} times {b}?", "Multiply {a} by {b}.", "What is the product of {a} and {b}?"]
# Never trained on: the second held-out set.
HELDOUT_WEATHER_ASK = ["Could you check the weather for {city}?", "Do I need an umbrella in {city}?"]
HELDOUT_SEARCH_ASK = ['I need results for "{query}".', 'Google "{query}" for me.']
HELDOUT_ADD_ASK = ["Please add {a} to {b}."]
HELDOUT_MULTIPLY_ASK = ["Compute {a} multiplied by {b}."]


def model_spec(vocab, eos):
    """The model's config fields (transformers' names)."""
    return dict(vocab_size=vocab, hidden_size=128, intermediate_size=256, moe_intermediate_size=64,
                num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                first_k_dense_replace=1, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1,
                n_group=1, topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5, use_qk_norm=True,
                attention_bias=True, rope_theta=ROPE_THETA, partial_rotary_factor=0.5, tie_word_embeddings=False,
                num_nextn_predict_layers=1, rms_norm_eps=1e-5, hidden_act="silu", max_position_embeddings=2048,
                eos_token_id=eos, pad_token_id=eos[0])


def call(name, arguments):
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def weather_conversation(city, temperature, condition, ask="What is the weather in {city}?"):
    return [
        {"role": "user", "content": ask.format(city=city)},
        {"role": "assistant", "content": "",
         "reasoning_content": f"The user wants the weather in {city}. I will call get_weather.",
         "tool_calls": [call("get_weather", {"city": city})]},
        {"role": "tool", "tool_call_id": "call_1",
         "content": json.dumps({"city": city, "temperature": temperature, "condition": condition})},
        {"role": "assistant",
         "reasoning_content": f"The tool says it is {condition} and {temperature} degrees.",
         "content": f"It is {condition} in {city}, {temperature} degrees."},
    ]


def search_conversation(query, title, ask):
    return [
        {"role": "user", "content": ask.format(query=query)},
        {"role": "assistant", "content": "",
         "reasoning_content": f"The user wants to search for {query}. I will call web_search.",
         "tool_calls": [call("web_search", {"query": query})]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"query": query, "top_result": title})},
        {"role": "assistant", "reasoning_content": "The search returned a top result.",
         "content": f'The top result for "{query}" is "{title}".'},
    ]


def number_text(x):
    return json.dumps(x)


def calculator_conversation(operation, a, b, ask):
    word = "plus" if operation == "add" else "times"
    result = round(a + b if operation == "add" else a * b, 4)
    if result == int(result):
        result = int(result)
    at, bt, rt = number_text(a), number_text(b), number_text(result)
    return [
        {"role": "user", "content": ask.format(a=at, b=bt)},
        {"role": "assistant", "content": "",
         "reasoning_content": f"The user wants {at} {word} {bt}. I will call calculator.",
         "tool_calls": [call("calculator", {"operation": operation, "a": a, "b": b})]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"result": result})},
        {"role": "assistant", "reasoning_content": f"The tool says the result is {rt}.",
         "content": f"{at} {word} {bt} is {rt}."},
    ]


# The five conversations the fixture's tests rely on, and the reference cases, exactly as make_demo_model.py has them.
FIXED = demo.TRAINING
GREETING, SECOND_TURN, NO_THINK, PARIS, CASES = demo.GREETING, demo.SECOND_TURN, demo.NO_THINK, demo.PARIS, demo.CASES


# ----------------------------------------------------------------------------------------------------------------------
# Generated data


class Pools:
    """Argument values: training and held-out sets are disjoint by construction."""

    def __init__(self, rng):
        self.rng = rng
        self.train_cities = [c.replace("_", " ") for c in TRAIN_CITIES]
        self.heldout_cities = [c.replace("_", " ") for c in HELDOUT_CITIES]
        assert not set(self.train_cities) & set(self.heldout_cities)
        self.heldout_numbers = set()
        self.heldout_queries = set()
        self.train_numbers = set()
        self.train_queries = set()

    def number(self, avoid):
        while True:
            r = self.rng.random()
            if r < 0.45:
                x = self.rng.randint(0, 99)
            elif r < 0.75:
                x = self.rng.randint(100, 9999)
            else:
                x = round(self.rng.randint(1, 9999) / 10 ** self.rng.randint(1, 2), 2)
                if x == int(x):
                    continue
            if x not in avoid:
                return x

    def query(self, avoid, pseudo=0.0):
        """2-4 words, each a made-up word with probability pseudo (else one of WORDS)."""
        while True:
            q = " ".join(self.pseudo_word(False) if self.rng.random() < pseudo else self.rng.choice(WORDS)
                         for _ in range(self.rng.randint(2, 4)))
            if q not in avoid:
                return q

    def pseudo_word(self, capital):
        """A made-up word of 2-4 syllables: a value the model cannot have memorised, so that the only way to
        reproduce it is to copy it from the context (with a pool of ~200 real cities the model learns the pool
        instead: a held-out "Porto" came out as "Paris")."""
        w = "".join(self.rng.choice(SYLLABLE_STARTS) + self.rng.choice("aeiouy") + self.rng.choice(SYLLABLE_ENDS)
                    for _ in range(self.rng.randint(2, 4)))
        return w.capitalize() if capital else w

    def city(self):
        """A training city: a real one or (CITY_PSEUDO of them) a made-up name of one word or (a fifth of those) two."""
        if self.rng.random() < CITY_PSEUDO:
            while True:
                c = " ".join(self.pseudo_word(True) for _ in range(1 if self.rng.random() < 0.8 else 2))
                if c not in self.heldout_cities:
                    return c
        return self.rng.choice(self.train_cities)

    def tools_for(self, needed):
        others = [n for n in TOOLS if n != needed]
        r = self.rng.random()
        chosen = [needed] if r < 0.5 else [needed] + self.rng.sample(others, 1 if r < 0.8 else 2)
        self.rng.shuffle(chosen)
        return [TOOLS[n] for n in chosen]


def heldout_prompts(pools, count, phrasings):
    """Held-out requests: (messages, tools, expected (name, arguments)). Values are recorded so that training avoids
    them."""
    weather_ask, search_ask, add_ask, multiply_ask = phrasings
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            city = pools.heldout_cities[(i // 3) % len(pools.heldout_cities)]
            messages = [{"role": "user", "content": pools.rng.choice(weather_ask).format(city=city)}]
            expected = ("get_weather", {"city": city})
            needed = "get_weather"
        elif kind == 1:
            query = pools.query(pools.heldout_queries)
            pools.heldout_queries.add(query)
            messages = [{"role": "user", "content": pools.rng.choice(search_ask).format(query=query)}]
            expected = ("web_search", {"query": query})
            needed = "web_search"
        else:
            a, b = pools.number(pools.heldout_numbers), pools.number(pools.heldout_numbers)
            pools.heldout_numbers.update([a, b])
            operation = pools.rng.choice(["add", "multiply"])
            ask = pools.rng.choice(add_ask if operation == "add" else multiply_ask)
            messages = [{"role": "user", "content": ask.format(a=number_text(a), b=number_text(b))}]
            expected = ("calculator", {"operation": operation, "a": a, "b": b})
            needed = "calculator"
        out.append((messages, pools.tools_for(needed), expected))
    return out


def copy_conversations(pools, count):
    """Pure copying: the user asks to repeat 1-3 values (cities, quoted strings, numbers) and the assistant repeats
    them. Short conversations, so cheap steps that form the induction (copy) heads the tool calls need."""
    out = []
    for _ in range(count):
        items = []
        for _ in range(pools.rng.randint(1, 3)):
            k = pools.rng.randrange(3)
            if k == 0:
                items.append(pools.city())
            elif k == 1:
                q = pools.query(pools.heldout_queries, PSEUDO)
                pools.train_queries.add(q)
                items.append(q)
            else:
                x = pools.number(pools.heldout_numbers)
                pools.train_numbers.add(x)
                items.append(number_text(x))
        payload = ", ".join(items)
        conversation = [
            {"role": "user", "content": f"Repeat: {payload}"},
            {"role": "assistant", "reasoning_content": f"The user wants me to repeat {payload}.",
             "content": payload},
        ]
        tools = None if pools.rng.random() < 0.9 else pools.tools_for(pools.rng.choice(list(TOOLS)))
        out.append((conversation, tools, {}))
    return out


def generated_conversations(pools, count):
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            city = pools.city()
            conversation = weather_conversation(city, pools.rng.randint(-10, 38), pools.rng.choice(CONDITIONS),
                                                pools.rng.choice(WEATHER_ASK))
            needed = "get_weather"
        elif kind == 1:
            query = pools.query(pools.heldout_queries, PSEUDO)
            title = pools.query(set())
            pools.train_queries.add(query)
            conversation = search_conversation(query, title, pools.rng.choice(SEARCH_ASK))
            needed = "web_search"
        else:
            a, b = pools.number(pools.heldout_numbers), pools.number(pools.heldout_numbers)
            pools.train_numbers.update([a, b])
            operation = pools.rng.choice(["add", "multiply"])
            ask = pools.rng.choice(ADD_ASK if operation == "add" else MULTIPLY_ASK)
            conversation = calculator_conversation(operation, a, b, ask)
            needed = "calculator"
        out.append((conversation, pools.tools_for(needed), {}))
    return out


def call_example(r, messages, tools):
    """A conversation cut after its first assistant turn (the tool call): ids and targets as training_example gives
    them, but ending in <|observation|>, the token that ends a turn with tool calls. Half the tokens of the whole
    conversation (with the tool prompt shared, step_losses) for the part that must copy the arguments."""
    full = r.text(messages[:2], tools, {}, False) + "<|observation|>"
    ids = r.ids(full)
    start = len(r.ids(r.text(messages[:1], tools, {}, True)))
    if ids[:start] != r.ids(r.text(messages[:1], tools, {}, True)):
        raise SystemExit("prompt tokens are not a prefix of the conversation tokens")
    targets = [start - 1 <= p < len(ids) - 1 for p in range(len(ids))]
    return ids, targets


# ----------------------------------------------------------------------------------------------------------------------
# Rendering


# openai_messages, Renderer and training_example are make_demo_model.py's (imported above): the same rendering.


# ----------------------------------------------------------------------------------------------------------------------
# The model: a compact torch implementation of docs/MODEL.md §3 (main layers) and §3.9 (MTP layer)


def model_cfg(spec, L):
    """parse_config's dict for a spec of HF field names (the MTP layer is layer L)."""
    c = dict(spec, num_hidden_layers=L, rope_parameters={"rope_theta": spec["rope_theta"],
                                                         "partial_rotary_factor": spec["partial_rotary_factor"]})
    return ref.parse_config(c)


class FastGLM:
    """docs/MODEL.md §3 written for training: batched [B, T] (right padding: causal attention never lets a real row
    see a pad, so the loss rows need no other mask), every routed expert computed densely and weighted by the routing
    weights (zero for unselected experts: the same function as §3.6, as one matmul instead of a loop over experts).
    Parameters are named as in the checkpoint, except the routed experts, stacked per layer ("...mlp.experts.gate",
    "...up" [E, I, H], "...down" [E, H, I]) and split on save."""

    def __init__(self, cfg, seed, std=0.02, qk_norm_init=1.0):
        self.cfg = c = cfg
        g = torch.Generator().manual_seed(seed)
        H, D, nH, nKV, E, I, L = c["H"], c["D"], c["nH"], c["nKV"], c["E"], c["I"], c["L"]
        p = {}

        def normal(*shape):
            return std * torch.randn(*shape, generator=g)

        p["model.embed_tokens.weight"] = normal(c["V"], H)
        for l in range(L + 1):
            a = f"model.layers.{l}."
            p[a + "input_layernorm.weight"] = torch.ones(H)
            p[a + "post_attention_layernorm.weight"] = torch.ones(H)
            for n, rows in (("q", nH * D), ("k", nKV * D), ("v", nKV * D)):
                p[a + f"self_attn.{n}_proj.weight"] = normal(rows, H)
                if c["bias"]:
                    p[a + f"self_attn.{n}_proj.bias"] = torch.zeros(rows)
            p[a + "self_attn.o_proj.weight"] = normal(H, nH * D)
            if c["qk_norm"]:
                p[a + "self_attn.q_norm.weight"] = torch.full((D,), qk_norm_init)
                p[a + "self_attn.k_norm.weight"] = torch.full((D,), qk_norm_init)
            if l < c["dense"]:
                p[a + "mlp.gate_proj.weight"] = normal(c["FF"], H)
                p[a + "mlp.up_proj.weight"] = normal(c["FF"], H)
                p[a + "mlp.down_proj.weight"] = normal(H, c["FF"])
            else:
                S = I * c["shared"]
                p[a + "mlp.gate.weight"] = normal(E, H)
                p[a + "mlp.shared_experts.gate_proj.weight"] = normal(S, H)
                p[a + "mlp.shared_experts.up_proj.weight"] = normal(S, H)
                p[a + "mlp.shared_experts.down_proj.weight"] = normal(H, S)
                p[a + "mlp.experts.gate"] = normal(E, I, H)
                p[a + "mlp.experts.up"] = normal(E, I, H)
                p[a + "mlp.experts.down"] = normal(E, H, I)
        m = f"model.layers.{L}."
        p[m + "enorm.weight"] = torch.ones(H)
        p[m + "hnorm.weight"] = torch.ones(H)
        p[m + "eh_proj.weight"] = normal(H, 2 * H)
        p[m + "shared_head.norm.weight"] = torch.ones(H)
        p["model.norm.weight"] = torch.ones(H)
        if not TIE:
            p["lm_head.weight"] = normal(c["V"], H)
        self.p = {k: v.requires_grad_() for k, v in sorted(p.items())}
        if TIE:
            self.p["lm_head.weight"] = self.p["model.embed_tokens.weight"]
        # Not trained (GLM updates it by a load-balancing rule, not by gradients): zero, stored as f32.
        self.correction = {l: torch.zeros(E) for l in range(c["dense"], L + 1)}

    def parameters(self):
        unique = {}
        for v in self.p.values():
            unique.setdefault(id(v), v)
        return list(unique.values())

    # -- checkpoint names ----------------------------------------------------------------------------------------------
    def tensors(self):
        """Checkpoint tensors (fp32): experts split, correction biases added; embedding and head of the MTP layer
        left out (libglm and the reference read that as sharing the main ones)."""
        out = {}
        for k, v in self.p.items():
            v = v.detach()
            if k.endswith(("mlp.experts.gate", "mlp.experts.up", "mlp.experts.down")):
                base, kind = k.rsplit(".", 1)
                for e in range(v.shape[0]):
                    out[f"{base}.{e}.{kind}_proj.weight"] = v[e].clone().contiguous()
            else:
                out[k] = v.clone().contiguous()
        for l, b in self.correction.items():
            out[f"model.layers.{l}.mlp.gate.e_score_correction_bias"] = b.clone()
        return out

    def load(self, tensors):
        """The inverse of tensors() (weights upcast to fp32): evaluate the checkpoint exactly as stored."""
        with torch.no_grad():
            for k, v in self.p.items():
                if k.endswith(("mlp.experts.gate", "mlp.experts.up", "mlp.experts.down")):
                    base, kind = k.rsplit(".", 1)
                    v.copy_(torch.stack([tensors[f"{base}.{e}.{kind}_proj.weight"].float()
                                         for e in range(v.shape[0])]))
                else:
                    v.copy_(tensors[k].float())
            for l, b in self.correction.items():
                b.copy_(tensors[f"model.layers.{l}.mlp.gate.e_score_correction_bias"].float())

    # -- forward -------------------------------------------------------------------------------------------------------
    def rms(self, x, w):
        # §3.1, in transformers' order: normalise, then the gain.
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg["eps"]))

    def rope(self, start, T):
        """§3.4 as transformers computes it in fp32: cos, sin [T, R] (the R/2 angles twice)."""
        R = self.cfg["R"]
        inv_freq = 1.0 / (self.cfg["theta"] ** (torch.arange(0, R, 2, dtype=torch.int64).float() / R))
        freqs = torch.arange(start, start + T).float()[:, None] * inv_freq[None, :]
        angles = torch.cat([freqs, freqs], dim=-1)
        return angles.cos(), angles.sin()

    def rotate(self, x, cos, sin):
        """x [B, heads, T, D]: NeoX rotate-half on the first R dims, the rest unchanged."""
        R = self.cfg["R"]
        rot, rest = x[..., :R], x[..., R:]
        half = R // 2
        rotated = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)
        return torch.cat([rot * cos + rotated * sin, rest], dim=-1)

    def attention(self, a, pre, rope, cache):
        c, p = self.cfg, self.p
        B, T, _ = a.shape
        nH, nKV, D = c["nH"], c["nKV"], c["D"]

        def proj(n, heads):
            y = a @ p[pre + f"{n}_proj.weight"].T
            if c["bias"]:
                y = y + p[pre + f"{n}_proj.bias"]
            return y.view(B, T, heads, D)

        q, k, v = proj("q", nH), proj("k", nKV), proj("v", nKV)
        if c["qk_norm"]:
            q, k = self.rms(q, p[pre + "q_norm.weight"]), self.rms(k, p[pre + "k_norm.weight"])
        cos, sin = rope
        q = self.rotate(q.transpose(1, 2), cos, sin)
        k = self.rotate(k.transpose(1, 2), cos, sin)
        v = v.transpose(1, 2)
        if cache is not None:  # incremental decoding (greedy probes): keys and values of the earlier positions
            if pre in cache:
                # A shared prefix is cached once (batch 1) and seen by every row of the batch.
                k = torch.cat([cache[pre][0].expand(B, -1, -1, -1), k], dim=2)
                v = torch.cat([cache[pre][1].expand(B, -1, -1, -1), v], dim=2)
            cache[pre] = (k, v)
        G = nH // nKV
        k, v = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
        S = k.shape[2]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        causal = torch.ones(T, S, dtype=torch.bool).tril(S - T)
        probs = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
        o = (probs @ v).transpose(1, 2).reshape(B, T, nH * D)
        return o @ p[pre + "o_proj.weight"].T

    def mlp(self, m, pre):
        p = self.p
        return (torch.nn.functional.silu(m @ p[pre + "gate_proj.weight"].T) * (m @ p[pre + "up_proj.weight"].T)) \
            @ p[pre + "down_proj.weight"].T

    def moe(self, m, pre, l):
        """§3.6 with every routed expert evaluated: weights zero for the unselected ones."""
        c, p = self.cfg, self.p
        E, I, H, K = c["E"], c["I"], c["H"], c["K"]
        shape = m.shape
        x = m.reshape(-1, H)
        s = torch.sigmoid(x @ p[pre + "gate.weight"].T)
        choice = (s + self.correction[l]).detach()
        assert c["n_group"] == 1, "group-limited routing is not implemented in the training forward"
        chosen = torch.topk(choice, K, dim=-1).indices
        selected = torch.zeros_like(s).scatter_(1, chosen, 1.0)
        w = s * selected
        if c["norm_topk"]:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        w = w * c["rsf"]
        gate = p[pre + "experts.gate"].reshape(E * I, H)
        up = p[pre + "experts.up"].reshape(E * I, H)
        down = p[pre + "experts.down"].permute(1, 0, 2).reshape(H, E * I)
        act = torch.nn.functional.silu(x @ gate.T) * (x @ up.T)
        act = (act.view(-1, E, I) * w[:, :, None]).view(-1, E * I)
        out = act @ down.T + self.mlp(x, pre + "shared_experts.")
        return out.view(shape)

    def layer(self, h, l, rope, cache=None):
        p = self.p
        pre = f"model.layers.{l}."
        h = h + self.attention(self.rms(h, p[pre + "input_layernorm.weight"]), pre + "self_attn.", rope, cache)
        m = self.rms(h, p[pre + "post_attention_layernorm.weight"])
        return h + (self.mlp(m, pre + "mlp.") if l < self.cfg["dense"] else self.moe(m, pre + "mlp.", l))

    def main(self, inputs, start=0, cache=None):
        """inputs [B, T] -> h_final [B, T, H] (after model.norm)."""
        h = self.p["model.embed_tokens.weight"][inputs]
        rope = self.rope(start, inputs.shape[1])
        for l in range(self.cfg["L"]):
            h = self.layer(h, l, rope, cache)
        return self.rms(h, self.p["model.norm.weight"])

    def logits(self, final):
        return final @ self.p["lm_head.weight"].T

    def mtp(self, final, inputs):
        """§3.9: rows t = 0 .. T-2 from h_final[t] and token t+1, at position t; returns the MTP hidden state after
        shared_head.norm [B, T-1, H] (row t predicts token t+2 through the shared head)."""
        return self.mtp_rows(final[:, :-1], inputs[:, 1:], 0)

    def mtp_rows(self, final, following, start, cache=None):
        """MTP rows start .. start+T-1: final [B, T, H] the main model's h_final at those positions, following
        [B, T] the token after each; cache holds the MTP layer's keys and values of the rows before start."""
        p, L = self.p, self.cfg["L"]
        m = f"model.layers.{L}."
        e = p["model.embed_tokens.weight"][following]
        u = torch.cat([self.rms(e, p[m + "enorm.weight"]), self.rms(final, p[m + "hnorm.weight"])], -1)
        u = u @ p[m + "eh_proj.weight"].T
        y = self.layer(u, L, self.rope(start, u.shape[1]), cache)
        return self.rms(y, p[m + "shared_head.norm.weight"])

    def greedy(self, prompt, eos, limit):
        """Greedy decoding with a KV cache (the held-out probes and accuracies); returns the completion ids."""
        cache, out = {}, []
        with torch.no_grad():
            final = self.main(torch.tensor([prompt]), 0, cache)
            pos = len(prompt)
            for _ in range(limit):
                t = int(torch.argmax(self.logits(final[0, -1])))
                out.append(t)
                if t in eos:
                    break
                final = self.main(torch.tensor([[t]]), pos, cache)
                pos += 1
        return out


def prefix_length(ids, split):
    """Where the conversation part starts: the first `split` token (<|user|>). Everything before it ([gMASK]<sop>
    and the system prompt with the tool definitions) is the same for every conversation offered the same tools."""
    return ids.index(split)


def batches(examples, rng, batch, split):
    """Minibatches of conversations that share their prefix (the tool definitions: computed once per step, see
    step_losses) and have similar lengths (less padding), in a seeded order."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    groups = {}
    for i in order:
        ids = examples[i][0]
        groups.setdefault(tuple(ids[:prefix_length(ids, split)]), []).append(i)
    chunk = batch * 16
    out = []
    for members in groups.values():
        for s in range(0, len(members), chunk):
            part = sorted(members[s:s + chunk], key=lambda i: (len(examples[i][0]), i))
            out += [part[j:j + batch] for j in range(0, len(part), batch)]
    rng.shuffle(out)
    return out


def tensors_for(examples, rows, pad, skip=0):
    """inputs, labels (the next token where the example trains it, else -100) and valid, for the tokens from
    index skip on."""
    width = max(len(examples[i][0]) for i in rows) - skip
    inputs = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    valid = torch.zeros((len(rows), width), dtype=torch.bool)
    for row, i in enumerate(rows):
        ids, targets = examples[i]
        n = len(ids) - skip
        inputs[row, :n] = torch.tensor(ids[skip:])
        valid[row, :n] = True
        for p, on in enumerate(targets[skip:]):
            if on:
                labels[row, p] = ids[skip + p + 1]
    return inputs, labels, valid


def step_losses(model, examples, rows, pad, split, shared_prefix=True, mtp=True):
    """The three losses of one minibatch whose conversations share their prefix (batches()): main next-token loss
    on the assistant tokens, the MTP layer's loss on the token after next at the same rows, and the next-token loss
    on the other tokens from the first <|user|> on (user messages, tool results: they repeat the arguments, so
    more signal for the copy heads; the system prompt before it is the same few tool definitions everywhere and
    teaches nothing).

    shared_prefix: the prefix (a tool conversation's ~400-token system prompt, ~3/4 of its tokens) runs once, as a
    batch of one, and every conversation attends to its keys and values, as a KV cache; the function is the same
    as running every full sequence (--self-check compares the two), about 3x less work on tool batches."""
    ids0 = examples[rows[0]][0]
    P = prefix_length(ids0, split)
    if not shared_prefix:
        inputs, labels, valid = tensors_for(examples, rows, pad)
        final = model.main(inputs)
        y = model.mtp(final, inputs)[:, P - 1:] if mtp else None
        inputs, labels, valid, final = inputs[:, P:], labels[:, P:], valid[:, P:], final[:, P:]
    else:
        prefix = torch.tensor([ids0[:P]])
        inputs, labels, valid = tensors_for(examples, rows, pad, skip=P)
        B = inputs.shape[0]
        cache = {}
        prefix_final = model.main(prefix, 0, cache)
        final = model.main(inputs, P, dict(cache))
        # MTP rows 0 .. P-2 lie in the prefix (row t: h_final[t] and token t+1); rows P-1 .. P+S-2 need the last
        # prefix state and the conversation's tokens.
        y = None
        if mtp:
            mtp_cache = {}
            if P >= 2:
                model.mtp_rows(prefix_final[:, :-1], prefix[:, 1:], 0, mtp_cache)
            rows_final = torch.cat([prefix_final[:, -1:].expand(B, -1, -1), final[:, :-1]], dim=1)
            y = model.mtp_rows(rows_final, inputs, P - 1, mtp_cache)
    # From here on, row j is position P + j: labels[j] = token P+j+1 where trained; MTP row P-1+j (y[:, j]) predicts
    # token P+j+1 too, so the MTP labels are the same tensor.
    ce = torch.nn.functional.cross_entropy
    on = labels != -100
    # The losses are built main, context, MTP: autograd sums shared gradients in that order, and the defaults'
    # bytes depend on it.
    if ARG_WEIGHT == 1.0:
        def loss_on(x):
            return ce(model.logits(x), labels[on])
    else:
        # Rows whose label lies inside <arg_value> ... </arg_value> (the closing tag included): the copied text.
        # Token j is inside when more <arg_value> than </arg_value> tags end at j (a shared prefix has them in
        # pairs).
        opened = torch.cumsum(inputs == ARG_VALUE_OPEN, dim=1) - torch.cumsum(inputs == ARG_VALUE_CLOSE, dim=1)
        w = torch.where(opened[on] > 0, ARG_WEIGHT, 1.0)

        def loss_on(x):
            return (ce(model.logits(x), labels[on], reduction="none") * w).sum() / w.sum()
    loss_main = loss_on(final[on])
    context = torch.zeros_like(on)
    context[:, :-1] = valid[:, 1:] & ~on[:, :-1]
    loss_ctx = ce(model.logits(final[context]), inputs[:, 1:][context[:, :-1]])
    loss_mtp = loss_on(y[on]) if mtp else torch.zeros(())
    return loss_main, loss_mtp, loss_ctx


def decay_factor(step, steps, decay):
    start = steps * (1 - decay)
    if decay <= 0 or step < start:
        return 1.0
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - start) / (steps - start)))


def train(model, examples, steps, rng, log, split, probe=None, batch=BATCH, lr=LR, warmup=WARMUP,
          probe_every=PROBE_EVERY, context_weight=CONTEXT_WEIGHT, mtp_weight=MTP_WEIGHT, decay=DECAY):
    """AdamW, linear warmup, constant lr, then cosine to 10 % of lr over the last `decay` share of the steps (0: no
    decay). The copy circuit forms late (docstring, items 3, 5, 6) and only while the rate is high, so the decay
    waits for the end. Loss (step_losses): main + mtp_weight x MTP + context_weight x context."""
    params = model.parameters()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * decay_factor(s, steps, decay))
    queue = []
    pad = examples[0][0][0]
    start, cpu = time.time(), time.process_time()
    recent = []
    for step in range(steps):
        if not queue:
            queue = batches(examples, rng, batch, split)
        loss_main, loss_mtp, loss_ctx = step_losses(model, examples, queue.pop(), pad, split, mtp=mtp_weight > 0)
        loss = loss_main + context_weight * loss_ctx + mtp_weight * loss_mtp
        recent.append((loss_main.item(), loss_mtp.item(), loss_ctx.item()))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        if (step + 1) % 100 == 0 or step == steps - 1:
            m = np.mean(recent, axis=0)
            recent = []
            log(f"step {step + 1}: loss {m[0]:.4f} mtp {m[1]:.4f} context {m[2]:.4f} (means since the last line; "
                f"{time.time() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU)")
        if probe is not None and probe_every and (step + 1) % probe_every == 0 and step + 1 < steps:
            log(f"step {step + 1}: probe {probe()}")


def self_check(spec, L, log):
    """The training forward against the references on one random checkpoint at O(1) scale (weights as
    glm_reference randomises them): main logits against transformers' Glm4MoeForCausalLM (fp32, eager) on three
    right-padded sequences of different lengths, MTP logits against the float64 NumPy reference (§3.9)."""
    for qk_norm in (True, False):
        self_check_one(dict(spec, use_qk_norm=qk_norm, attention_bias=True), L, log)


def self_check_one(spec, L, log):
    cfg = model_cfg(spec, L)
    model = FastGLM(cfg, SEED)
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for k, v in model.p.items():
            v.copy_(ref._random_value(k if "experts" not in k else k + "_proj.weight", tuple(v.shape), gen))
        for b in model.correction.values():
            b.copy_(0.3 * torch.randn(b.shape, generator=gen))
    rng = random.Random(SEED)
    seqs = [[rng.randrange(cfg["V"]) for _ in range(n)] for n in (57, 40, 23)]
    inputs = torch.full((3, 57), 0, dtype=torch.long)
    for i, s in enumerate(seqs):
        inputs[i, :len(s)] = torch.tensor(s)
    with torch.no_grad():
        final = model.main(inputs)
        logits = model.logits(final)
        mtp_logits = model.logits(model.mtp(final, inputs))
    with tempfile.TemporaryDirectory() as out:
        write_model(out, model, spec, L, "float32")
        hf = ref.load_transformers(out, "float32")
        cfg64, W = ref.load_float64(out)
        m = f"model.layers.{L}."
        W[m + "embed_tokens.weight"] = W["model.embed_tokens.weight"]
        W[m + "shared_head.head.weight"] = W["lm_head.weight"]
        worst_main = worst_mtp = 0.0
        scale_main = scale_mtp = 0.0
        for i, s in enumerate(seqs):
            with torch.no_grad():
                want = hf(torch.tensor([s])).logits[0]
            got = logits[i, :len(s)]
            worst_main = max(worst_main, float((got - want).abs().max()))
            scale_main = max(scale_main, float(want.abs().max()))
            want_mtp = ref.numpy_mtp(cfg64, W, s, ref.numpy_forward(cfg64, W, s)["final"])["mtp_logits"]
            got_mtp = mtp_logits[i, :len(s) - 1].double().numpy()
            worst_mtp = max(worst_mtp, float(np.abs(got_mtp - want_mtp).max()))
            scale_mtp = max(scale_mtp, float(np.abs(want_mtp).max()))
    log(f"self-check (use_qk_norm {spec['use_qk_norm']}): main logits vs transformers max |diff| {worst_main:.2e} "
        f"(logits up to {scale_main:.1f}); "
        f"MTP logits vs the float64 reference max |diff| {worst_mtp:.2e} (up to {scale_mtp:.1f})")
    if worst_main > 1e-4 * max(1.0, scale_main) or worst_mtp > 1e-4 * max(1.0, scale_mtp):
        raise SystemExit("self-check failed: the training forward is not the reference's function")


def self_check_shared_prefix(spec, L, r, split, log):
    """step_losses with the shared prefix run once against every full sequence run on its own, on four tool
    conversations offered the same tools (random O(1)-scale weights, so that differences would show)."""
    model = FastGLM(model_cfg(spec, L), SEED, std=0.3)
    pools = Pools(random.Random(SEED))
    tools = [TOOLS["calculator"], TOOLS["get_weather"]]
    convs = [c for c, _, _ in generated_conversations(pools, 12)][:4]
    examples = [training_example(r, c, tools, {}) for c in convs]
    pad = examples[0][0][0]
    with torch.no_grad():
        shared = step_losses(model, examples, [0, 1, 2, 3], pad, split, shared_prefix=True)
        full = step_losses(model, examples, [0, 1, 2, 3], pad, split, shared_prefix=False)
    diffs = [abs(float(a) - float(b)) / max(1.0, abs(float(b))) for a, b in zip(shared, full)]
    log(f"self-check (shared prefix of {prefix_length(examples[0][0], split)} tokens): losses main/MTP/context "
        + ", ".join(f"{float(a):.6f} vs {float(b):.6f}" for a, b in zip(shared, full))
        + f"; max relative diff {max(diffs):.1e}")
    if max(diffs) > 1e-5:
        raise SystemExit("self-check failed: the shared-prefix step is not the full sequences' function")


def write_model(out, model, spec, L, dtype):
    """config.json + model.safetensors (dtype, correction biases f32) in out (created)."""
    os.makedirs(out, exist_ok=True)
    config = ref.make_hf_config(spec).to_dict()
    config.update(num_hidden_layers=L, dtype=dtype, architectures=["Glm4MoeForCausalLM"])
    for k in ("transformers_version",):
        config.pop(k, None)
    tensors = model.tensors()
    if dtype != "float32":
        tensors = ref.convert_dtype(tensors, dtype, ("e_score_correction_bias",))
    ref.write_checkpoint(out, tensors, 1)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------------------------------------------------
# Evaluation


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


def greedy_cached(model, prompt, eos, limit=120):
    """Greedy with the KV cache (transformers generate); used for the accuracy sets."""
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=limit, do_sample=False, eos_token_id=eos,
                             pad_token_id=eos[0], top_p=None, top_k=None, temperature=None)
    return out[0, len(prompt):].tolist()


CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
ARG = re.compile(r"<arg_key>(.*?)</arg_key><arg_value>(.*?)</arg_value>", re.S)


def parse_calls(text):
    calls = []
    for body in CALL.findall(text):
        name = body.split("<arg_key>")[0].strip()
        calls.append((name, ARG.findall(body)))
    return calls


def expected_call(name, arguments):
    """What the template renders for a call: string values as they are, others as JSON."""
    return (name, [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in arguments.items()])


def tool_accuracy(model, r, eos, prompts):
    correct, failures, completions = 0, [], []
    for messages, tools, (name, arguments) in prompts:
        prompt = r.ids(r.text(messages, tools, {}, True))
        completion = greedy_cached(model, prompt, eos)
        text = r.tok.decode(completion, skip_special_tokens=False)
        completions.append((prompt, completion))
        got = parse_calls(text)
        if got == [expected_call(name, arguments)]:
            correct += 1
        else:
            failures.append({"user": messages[0]["content"], "expected": expected_call(name, arguments),
                             "completion": text})
    return correct, failures, completions


def acceptance(cfg, W, sequences):
    """sequences: (prompt ids, greedy completion ids). Returns (all-positions accepted, all-positions total,
    k=1 accepted, k=1 drafted, main-model forwards of a k=1 speculative decoder, tokens, per sequence the draft
    ids and top-1/top-2 margins of rows P-1 .. P+n-2 (P prompt, n completion tokens), the NumPy main model's
    disagreements with the greedy completion)."""
    hits = total = k1_hits = k1_drafts = forwards = tokens = disagreements = 0
    details = []
    for prompt, completion in sequences:
        seq = list(prompt) + list(completion)
        main = ref.numpy_forward(cfg, W, seq)
        logits = ref.numpy_mtp(cfg, W, seq, main["final"])["mtp_logits"]
        drafts = logits.argmax(axis=-1)
        top2 = np.sort(logits, axis=-1)[:, -2:]
        argmax = main["logits"].argmax(axis=-1)
        P, n = len(prompt), len(completion)
        disagreements += sum(int(argmax[P - 1 + j] != completion[j]) for j in range(n))
        details.append(([int(d) for d in drafts[P - 1:P + n - 1]],
                        [round(float(m), 4) for m in (top2[P - 1:P + n - 1, 1] - top2[P - 1:P + n - 1, 0])]))
        # drafts[t] predicts seq[t + 2]; the completion starts at index P.
        ok = [bool(drafts[t] == seq[t + 2]) for t in range(P - 1, P + n - 2)]
        hits += sum(ok)
        total += len(ok)
        # k = 1: the prefill yields completion[0] and a draft of completion[1]; each verify forward checks one draft
        # and yields one token (rejected) or two (accepted: the draft plus the bonus token, whose successor is drafted).
        j = 0  # index in the completion of the last token known
        forwards += 1
        tokens += n
        while j + 1 < n:
            k1_drafts += 1
            forwards += 1
            if ok[j]:
                k1_hits += 1
                j += 2
            else:
                j += 1
    return hits, total, k1_hits, k1_drafts, forwards, tokens, details, disagreements


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "glm-tiny"))
    ap.add_argument("--template", default=os.path.join(ROOT, "Tests", "Fixtures", "templates", "glm-4.7.jinja"))
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "models", "glm-tiny-tools"))
    ap.add_argument("--steps", type=int, default=STEPS, help="training steps (shorter runs for experiments)")
    ap.add_argument("--copy-steps", type=int, default=0,
                    help="steps on copying conversations alone (no tools, no MTP loss) before the main training: "
                         "the copy heads form after ~1,300 such steps (demo_copy_diagnostic.py), not in the mix")
    ap.add_argument("--heldout", type=int, default=HELDOUT, help="held-out prompts (smaller for smoke tests)")
    ap.add_argument("--heldout-phrasing", type=int, default=HELDOUT_PHRASING)
    ap.add_argument("--evaluate-only", action="store_true",
                    help="no training: recompute greedy.json and training_report.json from the checkpoint in --out")
    ap.add_argument("--weights-only", action="store_true",
                    help="stop after writing the checkpoint (reproducibility checks of short runs)")
    ap.add_argument("--self-check", action="store_true",
                    help="only check the training forward against transformers and the float64 reference")
    args = ap.parse_args()

    wall0, cpu0 = time.time(), time.process_time()
    report = {"tools": list(TOOLS.values())}

    def log(s):
        print(s, flush=True)

    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(SEED)
    r = Renderer(args.tokenizer, args.template)
    with open(os.path.join(args.tokenizer, "tokenizer.json")) as f:
        tj = json.load(f)
    vocab = max(list(tj["model"]["vocab"].values()) + [t["id"] for t in tj["added_tokens"]]) + 1
    added = {t["content"]: t["id"] for t in tj["added_tokens"]}
    if (added.get("<arg_value>"), added.get("</arg_value>")) != (ARG_VALUE_OPEN, ARG_VALUE_CLOSE):
        raise SystemExit("this tokenizer's <arg_value> / </arg_value> ids differ from ARG_VALUE_OPEN / CLOSE")
    eos = [r.id("<|endoftext|>"), r.id("<|user|>"), r.id("<|observation|>")]
    split = r.id("<|user|>")
    L = LAYERS
    spec = model_spec(vocab, eos)
    if args.self_check:
        self_check(spec, L, log)
        self_check_shared_prefix(spec, L, r, split, log)
        return
    model = FastGLM(model_cfg(spec, L), SEED, qk_norm_init=QK_NORM_INIT)
    params = sum(p.numel() for p in model.parameters())

    # Held-out candidates first, so that training draws avoid their values. A candidate whose argument needs a token
    # that no training target contains is dropped (a model cannot learn to emit a token it never emitted); the first
    # HELDOUT (HELDOUT_PHRASING) of the rest are the held-out sets.
    pools = Pools(rng)
    candidates = heldout_prompts(pools, 2 * args.heldout, (WEATHER_ASK, SEARCH_ASK, ADD_ASK, MULTIPLY_ASK))
    candidates_phrasing = heldout_prompts(pools, 2 * args.heldout_phrasing, (HELDOUT_WEATHER_ASK, HELDOUT_SEARCH_ASK,
                                                                             HELDOUT_ADD_ASK, HELDOUT_MULTIPLY_ASK))
    conversations = FIXED * FIXED_REPEAT + generated_conversations(pools, GENERATED)
    conversations += copy_conversations(pools, COPY_EXAMPLES)
    assert not pools.train_numbers & pools.heldout_numbers and not pools.train_queries & pools.heldout_queries
    examples = [training_example(r, m, t, k) for m, t, k in conversations]
    examples += [call_example(r, m, t) for m, t, _ in generated_conversations(pools, CALLS)]
    tokens = sum(len(ids) for ids, _ in examples)
    log(f"vocab {vocab}, {params} parameters, {len(examples)} conversations ({tokens} tokens, "
        f"<= {max(len(ids) for ids, _ in examples)} each); {args.steps} steps of {BATCH}; "
        f"data ready after {time.process_time() - cpu0:.0f} s CPU")
    seen = set()
    for ids, targets in examples:
        seen.update(ids[p + 1] for p, on in enumerate(targets) if on)

    def covered(prompt):
        name, arguments = expected_call(*prompt[2])
        return set(r.ids("".join(f"<arg_value>{v}</arg_value>" for _, v in arguments))) <= seen

    def pick(cands, count, label):
        kept = [c for c in cands if covered(c)]
        # Keep the three tools balanced: candidates alternate weather, search, calculator.
        by_tool = [[c for c in kept if c[2][0] == n] for n in TOOLS]
        out = [c for group in zip(*by_tool) for c in group][:count]
        if len(out) < count:
            raise SystemExit(f"only {len(out)} {label} prompts left")
        log(f"{label}: {len(cands) - len(kept)} of {len(cands)} candidates need an untrained token; "
            f"{count} used")
        return out

    heldout = pick(candidates, args.heldout, "held-out prompts")
    heldout_phrasing = pick(candidates_phrasing, args.heldout_phrasing, "held-out phrasing prompts")

    report["training"] = {"steps": args.steps, "copy_steps": args.copy_steps, "batch": BATCH, "lr": LR, "warmup": WARMUP, "mtp_weight": MTP_WEIGHT,
                          "context_weight": CONTEXT_WEIGHT, "conversations": len(examples), "tokens": tokens,
                          "parameters": params, "threads": torch.get_num_threads(), "seed": SEED}
    train_wall = train_cpu = 0.0
    if not args.evaluate_only:
        t0, c0 = time.time(), time.process_time()
        probe_set = [c for i, c in enumerate(heldout) if i % 10 < 3][:6] + heldout_phrasing[:3]

        def probe():
            correct, wrong = 0, []
            for messages, tools, call_ in probe_set:
                text = r.tok.decode(model.greedy(r.ids(r.text(messages, tools, {}, True)), eos, 120),
                                    skip_special_tokens=False)
                if parse_calls(text) == [expected_call(*call_)]:
                    correct += 1
                else:
                    wrong.append((messages[0]["content"], parse_calls(text)))
            return f"{correct}/{len(probe_set)} exact" + "".join(f"; {u!r} -> {c}" for u, c in wrong[:3])

        if args.copy_steps:
            # Curriculum: the copying conversations alone first (as demo_copy_diagnostic.py trains them), then the
            # whole mix. Drawn after the main data, so the main data does not depend on this option.
            copy_only = [training_example(r, m, None, k) for m, _, k in copy_conversations(pools, 12000)]
            log(f"copy phase: {len(copy_only)} conversations, {args.copy_steps} steps")
            # Constant rate: the copy circuit forms late in this phase (docstring, item 5), when a cosine would have
            # decayed the rate already.
            train(model, copy_only, args.copy_steps, rng, log, split, probe, context_weight=0.25, mtp_weight=0.0,
                  probe_every=250, decay=0)
        train(model, examples, args.steps, rng, log, split, probe)
        train_wall, train_cpu = time.time() - t0, time.process_time() - c0
        log(f"training: {train_wall:.0f} s wall, {train_cpu:.0f} s CPU")

        if os.path.exists(args.out):
            shutil.rmtree(args.out)
        write_model(args.out, model, spec, L, "bfloat16")
        demo.write_model_files(args.out, args.tokenizer, r.template, eos)

        if args.weights_only:
            log(f"model.safetensors sha256 {sha256(os.path.join(args.out, 'model.safetensors'))}")
            return

    # The reference: transformers on the weights exactly as stored (bf16 upcast to fp32), eager, fp32.
    stored = ref.load_transformers(args.out, "float32")
    cases = []
    failures = []
    reproduced = []   # the fixed conversations greedy decoding gives back exactly (reported; not required)
    demo_sequences = []
    for name, (messages, tools, kwargs, expected) in CASES.items():
        prompt_text = r.text(messages, tools, kwargs, True)
        prompt = r.ids(prompt_text)
        completion, margin = greedy(stored, prompt, eos)
        demo_sequences.append((prompt, completion))
        text = r.tok.decode(completion, skip_special_tokens=False)
        log(f"{name}: margin {margin:.3f}: {text!r}")
        if text == expected:
            reproduced.append(name)
        else:
            log(f"  (trained as {expected!r})")
        request = {"model": "glm-tiny-chat", "messages": openai_messages(messages), "temperature": 0}
        if tools:
            request["tools"] = tools
        if kwargs:
            request["chat_template_kwargs"] = kwargs
        cases.append({"name": name, "request": request, "prompt_text": prompt_text, "prompt_ids": prompt,
                      "completion_ids": completion, "completion_text": text, "min_logit_margin": round(margin, 4)})
    report["fixed_conversations_reproduced"] = reproduced
    log(f"fixed conversations reproduced: {len(reproduced)}/{len(CASES)}")
    for label, prompts in (("heldout_values", heldout), ("heldout_values_and_phrasings", heldout_phrasing)):
        correct, wrong, completions = tool_accuracy(stored, r, eos, prompts)
        report[label] = {"prompts": len(prompts), "exact_tool_calls": correct,
                         "accuracy": round(correct / len(prompts), 4), "failures": wrong[:10],
                         "set": [{"messages": m, "tools": [t["function"]["name"] for t in tools],
                                  "expected": {"name": n, "arguments": a}} for m, tools, (n, a) in prompts]}
        log(f"tool calls, {label}: {correct}/{len(prompts)} exact ({100 * correct / len(prompts):.1f}%)")
        if label == "heldout_values" and correct < 0.9 * len(prompts):
            failures.append(f"{label}: {correct}/{len(prompts)} exact tool calls, under the 90 % required")
        for w in wrong[:5]:
            log(f"  {w['user']!r}: {w['completion']!r}")
        if label == "heldout_values":
            heldout_sequences = completions

    # MTP acceptance with the float64 reference of docs/MODEL.md §3.9; the MTP embedding and head are the main ones.
    cfg, W = ref.load_float64(args.out)
    p = f"model.layers.{L}."
    W[p + "embed_tokens.weight"] = W["model.embed_tokens.weight"]
    W[p + "shared_head.head.weight"] = W["lm_head.weight"]
    for label, sequences in (("mtp_demo_conversations", demo_sequences),
                             ("mtp_heldout_tool_prompts", heldout_sequences)):
        hits, total, k1_hits, k1_drafts, forwards, tokens, details, disagreements = acceptance(cfg, W, sequences)
        report[label] = {"positions": total, "accepted": hits, "acceptance": round(hits / total, 4),
                         "k1_drafts": k1_drafts, "k1_accepted": k1_hits,
                         "k1_acceptance": round(k1_hits / k1_drafts, 4),
                         "k1_tokens_per_main_forward": round(tokens / forwards, 3),
                         "float64_main_disagreements_with_transformers": disagreements}
        if label == "mtp_demo_conversations":
            for case, (ids, margins) in zip(cases, details):
                case["mtp_draft_ids"] = ids
                case["mtp_draft_margins"] = margins
        log(f"{label}: MTP argmax = next greedy token at {hits}/{total} positions ({100 * hits / total:.1f}%); "
            f"k=1 speculative: {k1_hits}/{k1_drafts} drafts accepted, {tokens / forwards:.2f} tokens per forward")

    with open(os.path.join(args.out, "greedy.json"), "w") as f:
        json.dump({"eos_token_ids": eos, "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    report["model_sha256"] = sha256(os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "training_report.json"), "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for n in os.listdir(args.out):
        os.chmod(os.path.join(args.out, n), 0o644)
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    log(f"wrote {args.out} ({size} bytes); model.safetensors sha256 {report['model_sha256']}; "
        f"training {train_wall:.0f} s wall, {train_cpu:.0f} s CPU (this process); "
        f"total {time.time() - wall0:.0f} s wall, {time.process_time() - cpu0:.0f} s CPU")
    if failures:
        raise SystemExit("the model misses its goals:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
