"""Tool calls on Ollama's native chat path (the GGUF's own Jinja template, llama.cpp's chat
code) through the official Ollama and OpenAI Python clients, plain and streamed. Run by
tests/native_chat.rs:

    python native_tools.py http://127.0.0.1:PORT MODEL

The model is a test model whose GGUF template is Qwen-style with tools. The conversation shows
earlier calls, a tool result and an answer (history with tool calls and a tool result), then
asks again, so that even a tiny model (SmolLM2-135M) answers with a call. Every check is an
assert.
"""

import json
import sys

import ollama
import openai

base, model = sys.argv[1], sys.argv[2]

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city"}},
            "required": ["city"],
        },
    },
}
OPTIONS = {"temperature": 0, "num_predict": 48}


def ollama_history(last="What is the weather in Paris?"):
    def call(city):
        return {"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": city}}}]}
    return [
        {"role": "user", "content": "What is the weather in Berlin?"}, call("Berlin"),
        {"role": "tool", "tool_name": "get_weather", "content": "12 degrees"},
        {"role": "assistant", "content": "12 degrees in Berlin."},
        {"role": "user", "content": "What is the weather in Rome?"}, call("Rome"),
        {"role": "user", "content": "What is the weather in Madrid?"}, call("Madrid"),
        {"role": "user", "content": last},
    ]


def openai_history():
    def call(city, n):
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{n}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]}
    return [
        {"role": "user", "content": "What is the weather in Berlin?"}, call("Berlin", 1),
        {"role": "tool", "tool_call_id": "call_1", "content": "12 degrees"},
        {"role": "assistant", "content": "12 degrees in Berlin."},
        {"role": "user", "content": "What is the weather in Rome?"}, call("Rome", 2),
        {"role": "user", "content": "What is the weather in Madrid?"}, call("Madrid", 3),
        {"role": "user", "content": "What is the weather in Paris?"},
    ]


def check_call(name, arguments):
    assert name == "get_weather", name
    assert arguments == {"city": "Paris"}, arguments


client = ollama.Client(host=base)

# Ollama, not streamed: tool_calls with arguments as an object.
response = client.chat(model=model, messages=ollama_history(), tools=[TOOL], options=OPTIONS)
calls = response.message.tool_calls
assert calls, response
check_call(calls[0].function.name, dict(calls[0].function.arguments))
assert "<tool_call>" not in (response.message.content or ""), response.message.content

# Ollama, streamed: the call arrives whole, and no tag leaks into content.
streamed_calls, content = [], ""
for chunk in client.chat(model=model, messages=ollama_history(), tools=[TOOL], options=OPTIONS,
                         stream=True):
    content += chunk.message.content or ""
    streamed_calls.extend(chunk.message.tool_calls or [])
assert streamed_calls, content
check_call(streamed_calls[0].function.name, dict(streamed_calls[0].function.arguments))
assert "<tool" not in content and "</" not in content, content

oai = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)

# OpenAI, not streamed: arguments as a JSON string, finish_reason tool_calls.
chat = oai.chat.completions.create(model=model, messages=openai_history(), tools=[TOOL],
                                   temperature=0, max_tokens=48)
choice = chat.choices[0]
assert choice.finish_reason == "tool_calls", choice
call = choice.message.tool_calls[0]
assert call.type == "function" and call.id, call
check_call(call.function.name, json.loads(call.function.arguments))

# OpenAI, streamed: deltas with an index, the arguments in them, then finish_reason.
names, arguments, finish, text = {}, {}, None, ""
for chunk in oai.chat.completions.create(model=model, messages=openai_history(), tools=[TOOL],
                                         temperature=0, max_tokens=48, stream=True):
    if not chunk.choices:
        continue
    delta = chunk.choices[0].delta
    text += delta.content or ""
    for part in delta.tool_calls or []:
        if part.function and part.function.name:
            names[part.index] = part.function.name
        if part.function and part.function.arguments:
            arguments[part.index] = arguments.get(part.index, "") + part.function.arguments
    finish = chunk.choices[0].finish_reason or finish
assert finish == "tool_calls", (finish, text)
check_call(names[0], json.loads(arguments[0]))
assert "<tool" not in text, text

# tool_choice (beyond Ollama): "none" hides the tools, "required" enforces a call with the
# format's own grammar.
none = oai.chat.completions.create(model=model, messages=openai_history(), tools=[TOOL],
                                   tool_choice="none", temperature=0, max_tokens=24)
assert not none.choices[0].message.tool_calls, none
forced = oai.chat.completions.create(model=model, messages=openai_history(), tools=[TOOL],
                                     tool_choice="required", temperature=0, max_tokens=48)
assert forced.choices[0].message.tool_calls, forced
check_call(forced.choices[0].message.tool_calls[0].function.name,
           json.loads(forced.choices[0].message.tool_calls[0].function.arguments))

print("native tool calls: ok")
