// Minimal openai (Node) client of the Metis gateway: one non-streaming and
// one streaming Chat Completions call, printing the text and usage of each.
//
// The OpenAI SDK appends /chat/completions to its baseURL, so baseURL is the
// gateway root plus /v1; the gateway token goes where the SDK expects its
// API key.
//
//   METIS_URL=http://127.0.0.1:8422 METIS_KEY=gw_01J... node examples/gateway/node/openai.mjs
//
// METIS_OPENAI_MODEL picks the model (default "gpt-5-mini"; an Anthropic
// alias such as "haiku" works too). The SDK is resolved from
// tools/node_modules (run tools/install.sh); in your own project,
// `npm install openai` and import it normally.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../../tools/package.json', import.meta.url));
const { OpenAI } = require('openai');

const baseURL = process.env.METIS_URL;
const apiKey = process.env.METIS_KEY;
if (!baseURL || !apiKey) {
  console.error('set METIS_URL (gateway root, e.g. http://127.0.0.1:8422) and METIS_KEY (a gw_ token)');
  process.exit(1);
}
const model = process.env.METIS_OPENAI_MODEL || 'gpt-5-mini';

// maxRetries: 0 for batch use: the gateway owns the retry policy.
const client = new OpenAI({ baseURL: baseURL.replace(/\/+$/, '') + '/v1', apiKey, maxRetries: 0, timeout: 120_000 });
const params = {
  model,
  // Room for a reasoning model's hidden reasoning as well as the answer:
  // with too little, the reply is empty (finish_reason "length").
  max_completion_tokens: 2048,
  messages: [{ role: 'user', content: 'Say hello in one short sentence.' }],
};

try {
  const resp = await client.chat.completions.create(params);
  const choice = resp.choices[0];
  const text = choice?.message?.content ?? '';
  console.log(`non-streaming: model=${resp.model} finish_reason=${choice?.finish_reason} text=${JSON.stringify(text)}`);
  console.log(`non-streaming usage: prompt_tokens=${resp.usage?.prompt_tokens} completion_tokens=${resp.usage?.completion_tokens} total_tokens=${resp.usage?.total_tokens}`);
  if (!resp.usage?.total_tokens) throw new Error('non-streaming reply has no usage');
  if (!text) console.log(`non-streaming: no text (finish_reason ${choice?.finish_reason}): a reasoning model may spend all of max_completion_tokens on reasoning`);

  // Ask for the usage chunk: without include_usage a stream reports none.
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let usage = null;
  let finish = null;
  process.stdout.write('streaming: ');
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.delta?.content) process.stdout.write(c.delta.content);
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  process.stdout.write('\n');
  console.log(`streaming usage: prompt_tokens=${usage?.prompt_tokens} completion_tokens=${usage?.completion_tokens} total_tokens=${usage?.total_tokens} finish_reason=${finish}`);
  if (!usage?.total_tokens || !finish) throw new Error('streamed reply has no usage or no finish_reason');
} catch (err) {
  console.error('openai example:', err.status ?? '', err.message);
  process.exit(1);
}
