"""Drives agent-mesh's /v1 endpoints with the official `openai` package.

Usage: python3 tests/openai_client.py <base_url> <api_key>

Prints one `KEY=VALUE` line per check (values JSON-encoded) for the Rust test
(tests/openai_package.rs) to assert on; exits non-zero if the package raises where
it should not.
"""

import json
import sys

import openai


def say(key, value):
    print(f"{key}={json.dumps(value)}", flush=True)


def main():
    base_url, key = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)

    say("models", [m.id for m in client.models.list()])
    one = client.models.retrieve("agent-mesh/researcher")
    say("retrieved", {"id": one.id, "object": one.object, "owned_by": one.owned_by})
    try:
        client.models.retrieve("gpt-4o")
        say("retrieve_error", None)
    except openai.NotFoundError as e:
        say("retrieve_error", {"status": e.status_code, "code": e.code, "type": e.type})

    done = client.chat.completions.create(
        model="agent-mesh/researcher",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a prime number"},
        ],
        temperature=0.1,
    )
    say("nonstream_object", done.object)
    say("nonstream_content", done.choices[0].message.content)
    say("nonstream_finish", done.choices[0].finish_reason)
    say("nonstream_usage", [done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens])

    content = []
    reasoning = []
    finish = None
    usage = None
    roles = []
    stream = client.chat.completions.create(
        model="agent-mesh",
        messages=[
            {"role": "user", "content": "Name a prime number"},
            {"role": "assistant", "content": done.choices[0].message.content},
            {"role": "user", "content": [{"type": "text", "text": "And a larger one?"}]},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens]
        for choice in chunk.choices:
            delta = choice.delta
            if delta.role:
                roles.append(delta.role)
            if delta.content:
                content.append(delta.content)
            extra = getattr(delta, "reasoning_content", None)
            if extra is None and delta.model_extra:
                extra = delta.model_extra.get("reasoning_content")
            if extra:
                reasoning.append(extra)
            if choice.finish_reason:
                finish = choice.finish_reason
    say("stream_roles", roles)
    say("stream_content", "".join(content))
    say("stream_reasoning", "".join(reasoning))
    say("stream_finish", finish)
    say("stream_usage", usage)

    try:
        client.chat.completions.create(
            model="agent-mesh/nobody", messages=[{"role": "user", "content": "x"}]
        )
        say("error", None)
    except openai.BadRequestError as e:
        say("error", {"status": e.status_code, "param": e.param, "code": e.code, "type": e.type})

    try:
        openai.OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0).models.list()
        say("auth_error", None)
    except openai.AuthenticationError as e:
        say("auth_error", {"status": e.status_code, "code": e.code})


if __name__ == "__main__":
    main()
