#!/usr/bin/env python3
"""Renders the default model's chat template (tokenizer.chat_template, read
with gguf-py) with jinja2, the way Hugging Face's apply_chat_template does,
for a few conversations, and writes the results to
tests/fixtures/chat/smollm2_reference.json for test_chat_template.cpp.

Needs: pip install gguf jinja2. Run from the repository root:
    python3 scripts/make_chat_reference.py [models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import sys

import gguf
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

CONVERSATIONS = [
    {"name": "user only", "messages": [{"role": "user", "content": "What is your favourite animal?"}]},
    {"name": "system and user", "messages": [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Hello!"}]},
    {"name": "multi turn", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a dog breed.\nJust one."}]},
]


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    reader = gguf.GGUFReader(model)
    field = reader.fields["tokenizer.chat_template"]
    source = bytes(field.parts[field.data[0]]).decode("utf-8")
    # transformers renders with trim_blocks and lstrip_blocks in a sandbox.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(source)
    cases = []
    for conv in CONVERSATIONS:
        for add_generation_prompt in (True, False):
            cases.append({
                "name": conv["name"],
                "messages": conv["messages"],
                "add_generation_prompt": add_generation_prompt,
                "rendered": template.render(messages=conv["messages"], add_generation_prompt=add_generation_prompt,
                                            bos_token="<|im_start|>", eos_token="<|im_end|>"),
            })
    out = {"model": model.split("/")[-1], "jinja2": jinja2.__version__, "template": source, "cases": cases}
    with open("tests/fixtures/chat/smollm2_reference.json", "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
