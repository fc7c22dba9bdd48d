#!/usr/bin/env python3
"""Copy llama.cpp's tokenizer test vocabularies (MIT) into Tests/Fixtures/tokenizers/.

The files are `models/ggml-vocab-NAME.gguf` (vocabulary metadata only, no weights) with `.inp` (test texts,
separated by "\\n__ggml_vocab_test__\\n" lines) and `.out` (for each text, one line of ids produced with HF
tokenizers, no BOS). This script only copies and checks them; it downloads and builds nothing. Get the
folder from the llama-cpp-python sdist on PyPI, in a scratch folder outside the repository:

    python3 -m pip install scikit-build-core cmake    # the sdist's metadata step looks for CMake
    mkdir -p /tmp/llsrc && cd /tmp/llsrc
    python3 -m pip download --no-deps --no-build-isolation --no-binary llama-cpp-python llama-cpp-python==0.3.36
    tar xzf llama_cpp_python-0.3.36.tar.gz

then, from the repository root:

    python3 tools/copy_llama_vocab_fixtures.py /tmp/llsrc/llama_cpp_python-0.3.36/vendor/llama.cpp/models
"""
import argparse
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEST = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")

# Byte-level BPE vocabularies (tokenizer.ggml.model = gpt2) with expected ids: one per pre-tokenizer family.
BPE = ["gpt-2", "qwen2", "qwen35", "llama-bpe", "deepseek-llm", "deepseek-coder", "falcon", "mpt",
       "starcoder", "refact", "command-r"]
# Vocabularies of other tokenizer models, kept (the two smallest) to test that loading refuses them clearly:
# llama-spm (tokenizer.ggml.model = llama, SentencePiece) and bert-bge (bert, WordPiece). Their .inp/.out
# are copied too, for whoever adds those models.
OTHER = ["llama-spm", "bert-bge"]
SEPARATOR = "\n__ggml_vocab_test__\n"


def check_cases(inp, out):
    texts = open(inp, encoding="utf-8").read().split(SEPARATOR)
    if texts[-1] != "":
        sys.exit(f"{inp}: does not end with the separator line")
    lines = open(out, encoding="utf-8").read().split("\n")
    if lines[-1] != "":
        sys.exit(f"{out}: does not end with a newline")
    if len(texts) != len(lines):
        sys.exit(f"{inp}: {len(texts) - 1} texts but {out} has {len(lines) - 1} lines")
    for line in lines[:-1]:
        for field in line.split():
            if not field.isdigit():
                sys.exit(f"{out}: '{field}' is not a token id")
    return len(texts) - 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", help="llama.cpp's models/ folder (vendor/llama.cpp/models in the sdist)")
    args = parser.parse_args()
    total = 0
    for name in BPE + OTHER:
        base = f"ggml-vocab-{name}.gguf"
        for suffix in ("", ".inp", ".out"):
            source = os.path.join(args.models, base + suffix)
            if not os.path.isfile(source):
                sys.exit(f"missing {source}")
        count = check_cases(os.path.join(args.models, base + ".inp"), os.path.join(args.models, base + ".out"))
        size = 0
        for suffix in ("", ".inp", ".out"):
            shutil.copyfile(os.path.join(args.models, base + suffix), os.path.join(DEST, base + suffix))
            size += os.path.getsize(os.path.join(DEST, base + suffix))
        total += size
        print(f"{base:34} {count:3} cases {size / 1e6:6.2f} MB")
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
