"""Minimal anthropic-python client of the Metis gateway.

One non-streaming and one streaming Messages call, printing text and usage.
The Anthropic SDK adds /v1/messages itself, so base_url is the gateway root;
the gateway token goes where the SDK expects its API key.

    pip install anthropic
    METIS_URL=http://127.0.0.1:8422 METIS_KEY=gw_01J... python anthropic_example.py

METIS_ANTHROPIC_MODEL picks the model (default "haiku", a gateway alias).
"""

import os
import sys

from anthropic import Anthropic


def main() -> int:
    base_url = os.environ.get("METIS_URL")
    api_key = os.environ.get("METIS_KEY")
    if not base_url or not api_key:
        print("set METIS_URL (gateway root) and METIS_KEY (a gw_ token)", file=sys.stderr)
        return 1
    model = os.environ.get("METIS_ANTHROPIC_MODEL", "haiku")

    # max_retries=0 for batch use: the gateway owns the retry policy.
    client = Anthropic(base_url=base_url.rstrip("/"), api_key=api_key, max_retries=0)
    messages = [{"role": "user", "content": "Say hello in one short sentence."}]

    msg = client.messages.create(model=model, max_tokens=64, messages=messages)
    text = "".join(b.text for b in msg.content if b.type == "text")
    print(f"non-streaming: model={msg.model} stop_reason={msg.stop_reason} text={text!r}")
    print(f"non-streaming usage: input_tokens={msg.usage.input_tokens} output_tokens={msg.usage.output_tokens}")

    print("streaming: ", end="", flush=True)
    with client.messages.stream(model=model, max_tokens=64, messages=messages) as stream:
        for chunk in stream.text_stream:
            print(chunk, end="", flush=True)
        final = stream.get_final_message()
    print()
    print(
        f"streaming usage: input_tokens={final.usage.input_tokens} "
        f"output_tokens={final.usage.output_tokens} stop_reason={final.stop_reason}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
