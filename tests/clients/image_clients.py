"""Sends images to a running `rollama serve` with the official Ollama, OpenAI and Anthropic
Python clients, as applications do. Run by tests/clients.rs:

    python image_clients.py http://127.0.0.1:PORT VISION_MODEL TEXT_MODEL IMAGE.png

Every check is an assert; the first failure exits non-zero with its traceback.
"""

import base64
import sys

import anthropic
import ollama
import openai

base, model, text_model, image_path = sys.argv[1:5]
with open(image_path, "rb") as f:
    image = f.read()
encoded = base64.b64encode(image).decode()
client = ollama.Client(host=base)


def ollama_prompt_count(images):
    reply = client.chat(
        model=model,
        messages=[{"role": "user", "content": "What is in this picture?", "images": images}],
        options={"temperature": 0, "num_predict": 4},
    )
    assert reply.message.content, reply
    return reply.prompt_eval_count


# ollama-python takes a path, raw bytes or base64 text, and sends base64.
plain = ollama_prompt_count([])
for form in (image_path, image, encoded):
    count = ollama_prompt_count([form])
    assert count >= plain + 64, (form if isinstance(form, str) else "bytes", count, plain)

generated = client.generate(model=model, prompt="Describe it.", images=[image_path],
                            options={"num_predict": 4})
assert generated.prompt_eval_count >= 64, generated

# A model without vision: the client raises the server's 400.
try:
    client.chat(model=text_model,
                messages=[{"role": "user", "content": "Hi", "images": [image_path]}])
    raise AssertionError("a text-only model must refuse images")
except ollama.ResponseError as e:
    assert e.status_code == 400, e
    assert "does not support vision" in e.error, e.error

# OpenAI: an image_url content part with a data URL.
oai = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
chat = oai.chat.completions.create(
    model=model,
    max_tokens=4,
    messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
    ]}],
)
assert chat.choices[0].message.content, chat
assert chat.usage.prompt_tokens >= plain + 64, chat.usage

# Anthropic: an image block with a base64 source.
claude = anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0)
message = claude.messages.create(
    model=model,
    max_tokens=4,
    messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": encoded}},
        {"type": "text", "text": "What is in this picture?"},
    ]}],
)
assert message.content[0].text, message
assert message.usage.input_tokens >= 64, message.usage

print("all image client checks passed")
