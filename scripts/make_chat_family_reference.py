#!/usr/bin/env python3
"""Renders the chat templates of Gemma 3, Phi-3 (three versions) and Qwen3
with jinja2, the way Hugging Face's apply_chat_template does, for a set of
conversations, and writes tests/fixtures/chat/families_reference.json for
test_chat_template.cpp.

The templates are the chat_template strings of the models' tokenizer_config.json:
  gemma3         google/gemma-3-270m-it (and the other Gemma 3 models):
                 <bos>, the system message folded into the first user turn,
                 'assistant' written 'model', contents trimmed
  phi3           microsoft/Phi-3-mini-4k-instruct after its mid-2024 update:
                 system, user and assistant turns, EOS when there is no
                 generation prompt
  phi3.5         microsoft/Phi-3.5-mini-instruct: the same, but an empty
                 system message is left out
  phi3-original  the first Phi-3-mini release, as llama.cpp's
                 ggml-vocab-phi-3.gguf and early GGUF files carry it: BOS, no
                 system turns, "<|assistant|>\\n" after every user turn
                 (phi3-original-no-bos: the same without its {{ bos_token }})
  qwen3          Qwen/Qwen3-0.6B (and the other Qwen3 models): ChatML with
                 <think> blocks on the assistant turns after the last user turn
A conversation the template refuses (Gemma's roles must alternate) is
recorded with the template's error message instead of a rendering.

Not run by the test suite; run by hand from the repository root and commit
the output (--check-phi3-vocab first checks that phi3-original is the
template llama.cpp's Phi-3 vocabulary file stores):
    python3 -m venv /tmp/chatref && /tmp/chatref/bin/pip install jinja2==3.1.6 gguf
    /tmp/chatref/bin/python scripts/make_chat_family_reference.py \\
        --check-phi3-vocab models/vocabs/ggml-vocab-phi-3.gguf
"""
from __future__ import annotations

import argparse
import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))

GEMMA3 = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n"
)

PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)

PHI3_5 = PHI3.replace("{% if message['role'] == 'system' %}",
                      "{% if message['role'] == 'system' and message['content'] %}")

# This one writes real newlines inside its string literals, not "\\n".
PHI3_ORIGINAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + "
    "message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}"
    "{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}"
)

QWEN3 = (
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- messages[0].content + '\\n\\n' }}\n"
    "    {%- endif %}\n"
    "    {{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided "
    "with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n"
    "{%- for message in messages[::-1] %}\n"
    "    {%- set index = (messages|length - 1) - loop.index0 %}\n"
    "    {%- if ns.multi_step_tool and message.role == \"user\" and message.content is string and "
    "not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}\n"
    "        {%- set ns.multi_step_tool = false %}\n"
    "        {%- set ns.last_query_index = index %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message.content is string %}\n"
    "        {%- set content = message.content %}\n"
    "    {%- else %}\n"
    "        {%- set content = '' %}\n"
    "    {%- endif %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {%- set reasoning_content = '' %}\n"
    "        {%- if message.reasoning_content is string %}\n"
    "            {%- set reasoning_content = message.reasoning_content %}\n"
    "        {%- else %}\n"
    "            {%- if '</think>' in content %}\n"
    "                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1]"
    ".lstrip('\\n') %}\n"
    "                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n"
    "            {%- endif %}\n"
    "        {%- endif %}\n"
    "        {%- if loop.index0 > ns.last_query_index %}\n"
    "            {%- if loop.last or (not loop.last and reasoning_content) %}\n"
    "                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + "
    "'\\n</think>\\n\\n' + content.lstrip('\\n') }}\n"
    "            {%- else %}\n"
    "                {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    "            {%- endif %}\n"
    "        {%- else %}\n"
    "            {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    "        {%- endif %}\n"
    "        {%- if message.tool_calls %}\n"
    "            {%- for tool_call in message.tool_calls %}\n"
    "                {%- if (loop.first and content) or (not loop.first) %}\n"
    "                    {{- '\\n' }}\n"
    "                {%- endif %}\n"
    "                {%- if tool_call.function %}\n"
    "                    {%- set tool_call = tool_call.function %}\n"
    "                {%- endif %}\n"
    "                {{- '<tool_call>\\n{\"name\": \"' }}\n"
    "                {{- tool_call.name }}\n"
    "                {{- '\", \"arguments\": ' }}\n"
    "                {%- if tool_call.arguments is string %}\n"
    "                    {{- tool_call.arguments }}\n"
    "                {%- else %}\n"
    "                    {{- tool_call.arguments | tojson }}\n"
    "                {%- endif %}\n"
    "                {{- '}\\n</tool_call>' }}\n"
    "            {%- endfor %}\n"
    "        {%- endif %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "    {%- if enable_thinking is defined and enable_thinking is false %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}"
)

# name -> (template, bos_token, eos_token) as the model's tokenizer_config.json has them
TEMPLATES = {
    "gemma3": (GEMMA3, "<bos>", "<eos>"),
    "phi3": (PHI3, "<s>", "<|endoftext|>"),
    "phi3.5": (PHI3_5, "<s>", "<|endoftext|>"),
    "phi3-original": (PHI3_ORIGINAL, "<s>", "<|endoftext|>"),
    # the same without its leading {{ bos_token }}: renders no BOS
    "phi3-original-no-bos": (PHI3_ORIGINAL.removeprefix("{{ bos_token }}"), "<s>", "<|endoftext|>"),
    "qwen3": (QWEN3, None, "<|im_end|>"),
}


def user(text): return {"role": "user", "content": text}
def assistant(text): return {"role": "assistant", "content": text}
def system(text): return {"role": "system", "content": text}


CONVERSATIONS = [
    ("user only", [user("What is your favourite animal?")]),
    ("system and user", [system("You are a pirate."), user("Hello!")]),
    ("multi turn", [user("Hi"), assistant("Hello! How can I help?"), user("Name a dog breed.\nJust one.")]),
    ("system and multi turn", [system("Be brief.\n"), user("2+2?"), assistant("4"), user("And 3+3?")]),
    ("ends with assistant", [user("Say yes."), assistant("Yes.")]),
    ("contents with outer whitespace", [system("  Sys  "), user("\n  Hi there \t\n"), assistant(" Hey \n")]),
    ("empty system", [system(""), user("Hi")]),
    ("empty user", [user("")]),
    ("system only", [system("Only a system message.")]),
    ("think in history", [user("Q1"), assistant("<think>\nreasoning one\n</think>\n\nA1"), user("Q2")]),
    ("think at the end", [user("Q"), assistant("<think>\nlet me see\n\n</think>\n\nThe answer.")]),
    ("think without opening tag", [user("Q"), assistant("half a thought</think>answer")]),
    ("two assistant turns after the last user", [user("Q"), assistant("<think>r1</think>a1"),
                                                  assistant("a2")]),
    ("assistant first", [assistant("I speak first."), user("Fine.")]),
    ("two users in a row", [user("one"), user("two")]),
    ("unicode", [user("Grüße, 世界! 👋\n")]),
]


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "chat",
                                                       "families_reference.json"))
    parser.add_argument("--check-phi3-vocab", help="ggml-vocab-phi-3.gguf: its template must be phi3-original")
    args = parser.parse_args()

    if args.check_phi3_vocab:
        import gguf
        field = gguf.GGUFReader(args.check_phi3_vocab).fields["tokenizer.chat_template"]
        stored = bytes(field.parts[field.data[0]]).decode("utf-8")
        assert stored == PHI3_ORIGINAL, "the phi-3 vocabulary's template is not PHI3_ORIGINAL"

    # transformers renders in a sandbox with trim_blocks and lstrip_blocks.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    out = {"generator": "scripts/make_chat_family_reference.py", "jinja2": jinja2.__version__, "templates": {}}
    for name, (source, bos, eos) in TEMPLATES.items():
        template = env.from_string(source)
        cases = []
        for conversation, messages in CONVERSATIONS:
            for add_generation_prompt in (True, False):
                case = {"name": conversation, "messages": messages, "add_generation_prompt": add_generation_prompt}
                try:
                    case["rendered"] = template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                       bos_token=bos, eos_token=eos)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
        out["templates"][name] = {"template": source, "bos_token": bos, "eos_token": eos, "cases": cases}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
