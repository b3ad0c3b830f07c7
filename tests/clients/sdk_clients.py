"""Drives a running `rollama serve` with the official OpenAI, Anthropic and Ollama Python
clients, as applications do. Run by tests/clients.rs:

    python sdk_clients.py http://127.0.0.1:PORT MODEL [EMBEDDING_MODEL]

Every check is an assert; the first failure exits non-zero with its traceback.
"""

import json
import math
import sys

import anthropic
import ollama
import openai

base, model = sys.argv[1], sys.argv[2]
embedder = sys.argv[3] if len(sys.argv) > 3 else None
thinker = sys.argv[4] if len(sys.argv) > 4 else None
oai = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)

# Models.
ids = [m.id for m in oai.models.list()]
assert f"{model}:latest" in ids, ids
assert oai.models.retrieve(model).id == model
try:
    oai.models.retrieve("no-such-model")
    raise AssertionError("retrieving a missing model must fail")
except openai.NotFoundError as e:
    assert e.status_code == 404
    assert "not found" in e.message, e.message

# Chat, not streamed.
chat = oai.chat.completions.create(
    model=model,
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
    max_tokens=8,
    seed=3,
)
assert chat.object == "chat.completion"
assert chat.choices[0].message.role == "assistant"
assert chat.choices[0].message.content, chat
assert chat.choices[0].finish_reason in ("stop", "length")
assert chat.usage.completion_tokens <= 8 and chat.usage.prompt_tokens > 0
assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

# Chat, streamed with usage.
pieces, usage, finishes = [], None, []
stream = oai.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Count to five."}],
    max_tokens=6,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
assert pieces, "streamed content"
assert finishes in (["length"], ["stop"]), finishes
assert usage is not None and 0 < usage.completion_tokens <= 6, usage

# Structured output through the SDK's json_schema response format.
schema = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
structured = oai.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "A city and its population, as JSON."}],
    response_format={"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": schema}},
    # Greedy: at the default temperature this 135M model may write a city name for thousands
    # of tokens, which the grammar allows.
    temperature=0,
    max_tokens=200,
)
value = json.loads(structured.choices[0].message.content)
assert isinstance(value["city"], str) and isinstance(value["population"], int), value

# Tools with an enforced choice.
tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
called = oai.chat.completions.create(
    model=f"{model}-tools",
    messages=[{"role": "user", "content": "What's the weather in Lisbon?"}],
    tools=tools,
    tool_choice={"type": "function", "function": {"name": "get_weather"}},
    temperature=0,
    max_tokens=200,
)
call = called.choices[0].message.tool_calls[0]
assert called.choices[0].finish_reason == "tool_calls"
assert call.function.name == "get_weather"
assert isinstance(json.loads(call.function.arguments)["city"], str)

# Legacy completions, plain and streamed.
completion = oai.completions.create(model=model, prompt="The sky is", max_tokens=5)
assert completion.object == "text_completion"
assert isinstance(completion.choices[0].text, str)
assert completion.usage.completion_tokens <= 5
texts = [c.choices[0].text for c in oai.completions.create(
    model=model, prompt="Once upon a time", max_tokens=4, stream=True) if c.choices]
assert "".join(texts), texts

# Responses API.
response = oai.responses.create(model=model, input="Say hello.", instructions="Be brief.",
                                max_output_tokens=6)
assert response.output_text, response
events = [e.type for e in oai.responses.create(model=model, input="Hi", max_output_tokens=3,
                                                stream=True)]
assert events[0] == "response.created" and "response.output_text.delta" in events, events

# Errors as the SDK raises them.
try:
    oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("a missing model must fail")
except openai.NotFoundError as e:
    assert e.status_code == 404

# Anthropic's client against /v1/messages.
claude = anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0)
message = claude.messages.create(
    model=model, max_tokens=6, system="Be brief.",
    messages=[{"role": "user", "content": "Hello"}],
)
assert message.type == "message" and message.role == "assistant"
assert message.content[0].type == "text" and message.content[0].text
assert message.stop_reason in ("end_turn", "max_tokens")
with claude.messages.stream(model=model, max_tokens=5,
                            messages=[{"role": "user", "content": "Hi"}]) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
assert text and 0 < final.usage.output_tokens <= 5, (text, final)
try:
    claude.messages.create(model="no-such-model", max_tokens=5,
                           messages=[{"role": "user", "content": "x"}])
    raise AssertionError("a missing model must fail")
except anthropic.NotFoundError as e:
    assert e.status_code == 404

# Ollama's own client, unchanged.
client = ollama.Client(host=base)
answer = client.chat(model=model, messages=[{"role": "user", "content": "Hi"}],
                     options={"num_predict": 4})
assert answer.message.content and answer.done

# Embeddings through both clients (an embedding model created from all-MiniLM-L6-v2).
if embedder:
    def unit(v):
        return abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-3

    batch = client.embed(model=embedder, input=["why is the sky blue?", "hello"])
    assert len(batch.embeddings) == 2 and len(batch.embeddings[0]) == 384, batch
    assert batch.prompt_eval_count == 11 and unit(batch.embeddings[0]), batch.prompt_eval_count
    legacy = client.embeddings(model=embedder, prompt="why is the sky blue?")
    assert len(legacy.embedding) == 384 and not unit(legacy.embedding)
    # The OpenAI client asks for base64 unless told otherwise, and decodes it itself.
    oa = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    listed = oa.embeddings.create(model=embedder, input=["why is the sky blue?", "hello"])
    assert [d.index for d in listed.data] == [0, 1] and listed.usage.prompt_tokens == 11
    same = sum(x * y for x, y in zip(listed.data[0].embedding, batch.embeddings[0]))
    assert same > 0.9999, same
    short = oa.embeddings.create(model=embedder, input="hello", encoding_format="float",
                                 dimensions=32)
    assert len(short.data[0].embedding) == 32 and unit(short.data[0].embedding)
    try:
        client.embed(model=model, input="x")
        raise AssertionError("a chat model must not embed")
    except ollama.ResponseError as e:
        assert e.status_code == 400 and "does not support embedding" in e.error, e

# A JSON schema the grammar cannot compile is the client's mistake: a 400, which the OpenAI
# client raises as BadRequestError (not a retried 500).
dangling = {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]}
try:
    openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0).chat.completions.create(
        model=model, max_tokens=4, messages=[{"role": "user", "content": "Hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": dangling}})
    raise AssertionError("a schema with a dangling $ref must be refused")
except openai.BadRequestError as e:
    assert e.status_code == 400, e

# Thinking (a model whose template shows reasoning): ollama-python's `think=` and
# `message.thinking`, and the OpenAI client's `reasoning` on the message.
if thinker:
    thought = client.chat(model=thinker, messages=[{"role": "user", "content": "Hi"}],
                          think=True, options={"num_predict": 8, "temperature": 0})
    assert thought.message.thinking, thought
    plain = client.chat(model=thinker, messages=[{"role": "user", "content": "Hi"}],
                        think=False, options={"num_predict": 8, "temperature": 0})
    assert not plain.message.thinking and plain.message.content, plain
    generated = client.generate(model=thinker, prompt="Hi", think=True,
                                options={"num_predict": 8, "temperature": 0})
    assert generated.thinking, generated
    oa = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    completion = oa.chat.completions.create(model=thinker, max_tokens=8, temperature=0,
                                            messages=[{"role": "user", "content": "Hi"}])
    reasoning = (completion.choices[0].message.model_extra or {}).get("reasoning")
    assert reasoning, completion

print("all client checks passed")
