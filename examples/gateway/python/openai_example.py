"""Minimal openai-python client of the Metis gateway.

One non-streaming and one streaming Chat Completions call, printing text and
usage. The OpenAI SDK appends /chat/completions to base_url, so base_url is
the gateway root plus /v1; the gateway token goes where the SDK expects its
API key.

    pip install openai
    METIS_URL=http://127.0.0.1:8422 METIS_KEY=gw_01J... python openai_example.py

METIS_OPENAI_MODEL picks the model (default "gpt-5-mini"; an Anthropic alias
such as "haiku" works too).
"""

import os
import sys

from openai import OpenAI


def main() -> int:
    base_url = os.environ.get("METIS_URL")
    api_key = os.environ.get("METIS_KEY")
    if not base_url or not api_key:
        print("set METIS_URL (gateway root) and METIS_KEY (a gw_ token)", file=sys.stderr)
        return 1
    model = os.environ.get("METIS_OPENAI_MODEL", "gpt-5-mini")

    # max_retries=0 for batch use: the gateway owns the retry policy.
    client = OpenAI(base_url=base_url.rstrip("/") + "/v1", api_key=api_key, max_retries=0)
    messages = [{"role": "user", "content": "Say hello in one short sentence."}]

    resp = client.chat.completions.create(model=model, messages=messages, max_completion_tokens=2048)
    choice = resp.choices[0]
    print(f"non-streaming: model={resp.model} finish_reason={choice.finish_reason} text={choice.message.content!r}")
    print(
        f"non-streaming usage: prompt_tokens={resp.usage.prompt_tokens} "
        f"completion_tokens={resp.usage.completion_tokens} total_tokens={resp.usage.total_tokens}"
    )

    # Ask for the usage chunk: without include_usage a stream reports none.
    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        max_completion_tokens=2048,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    finish = None
    print("streaming: ", end="", flush=True)
    for chunk in stream:
        for c in chunk.choices:
            if c.delta.content:
                print(c.delta.content, end="", flush=True)
            if c.finish_reason:
                finish = c.finish_reason
        if chunk.usage:
            usage = chunk.usage
    print()
    if usage is None:
        print("streamed reply carried no usage", file=sys.stderr)
        return 1
    print(
        f"streaming usage: prompt_tokens={usage.prompt_tokens} completion_tokens={usage.completion_tokens} "
        f"total_tokens={usage.total_tokens} finish_reason={finish}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
