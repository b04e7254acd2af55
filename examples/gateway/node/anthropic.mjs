// Minimal @anthropic-ai/sdk client of the Metis gateway: one non-streaming
// and one streaming Messages call, printing the text and usage of each.
//
// The Anthropic SDK adds /v1/messages itself, so baseURL is the gateway
// root; the gateway token goes where the SDK expects its API key.
//
//   METIS_URL=http://127.0.0.1:8422 METIS_KEY=gw_01J... node examples/gateway/node/anthropic.mjs
//
// METIS_ANTHROPIC_MODEL picks the model (default "haiku", a gateway alias).
// The SDK is resolved from tools/node_modules (run tools/install.sh); in your
// own project, `npm install @anthropic-ai/sdk` and import it normally.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../../tools/package.json', import.meta.url));
const { Anthropic } = require('@anthropic-ai/sdk');

const baseURL = process.env.METIS_URL;
const apiKey = process.env.METIS_KEY;
if (!baseURL || !apiKey) {
  console.error('set METIS_URL (gateway root, e.g. http://127.0.0.1:8422) and METIS_KEY (a gw_ token)');
  process.exit(1);
}
const model = process.env.METIS_ANTHROPIC_MODEL || 'haiku';

// maxRetries: 0 for batch use: the gateway owns the retry policy.
const client = new Anthropic({ baseURL: baseURL.replace(/\/+$/, ''), apiKey, maxRetries: 0, timeout: 120_000 });
const params = {
  model,
  max_tokens: 64,
  messages: [{ role: 'user', content: 'Say hello in one short sentence.' }],
};
const textOf = (msg) => msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

try {
  const msg = await client.messages.create(params);
  const text = textOf(msg);
  console.log(`non-streaming: model=${msg.model} stop_reason=${msg.stop_reason} text=${JSON.stringify(text)}`);
  console.log(`non-streaming usage: input_tokens=${msg.usage.input_tokens} output_tokens=${msg.usage.output_tokens}`);
  if (!text || !msg.usage.output_tokens) throw new Error('non-streaming reply has no text or no usage');

  const stream = client.messages.stream(params);
  process.stdout.write('streaming: ');
  stream.on('text', (t) => process.stdout.write(t));
  const final = await stream.finalMessage();
  process.stdout.write('\n');
  console.log(`streaming usage: input_tokens=${final.usage.input_tokens} output_tokens=${final.usage.output_tokens} stop_reason=${final.stop_reason}`);
  if (!textOf(final) || !final.usage.output_tokens || !final.stop_reason) {
    throw new Error('streamed reply has no text, no usage or no stop_reason');
  }
} catch (err) {
  console.error('anthropic example:', err.status ?? '', err.message);
  process.exit(1);
}
