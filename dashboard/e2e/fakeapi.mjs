// A throwaway stand-in for metis_analytics, to develop and test the dashboard
// before the real gateway is wired. It documents the response shapes the
// dashboard codes against.
//
//   node dashboard/e2e/fakeapi.mjs [port]      (default 8421; 0 = any free port)
//
// It serves dashboard/dist/ at /dashboard/ and computes every /analytics/*
// answer from one list of generated calls, so filters and windows agree with
// each other the way the real rollups do. The data: several teams, users and
// keys; team "eng" holds well over half of the spend; a key named
// `<img src=x onerror=alert(1)>`; keys with no user or team (the "untagged"
// bucket); one unpriced call (cost_usd null) among bob's priced ones, and
// ivan-local (user ivan, team ops) whose only call is unpriced, so its key,
// user and team read cost_usd null as the real API does.
//
// METIS_FAKE_QUOTAS=1 (or createServer({quotas: true})) answers with spend-cap
// objects instead of quota: null, to see how caps will render once they exist.
//
// Test hooks (fake only): GET /__fake → {"fake":true}; POST /__fake/add adds
// one priced call at the current time (to watch auto-refresh keep up).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');

export const XSS_KEY_NAME = '<img src=x onerror=alert(1)>';

// Gateway keys: id, name, user, team, workspace, weight (share of traffic), shapes.
const KEYS = [
  { id: 'gk_01JALICELAPTOP0000000000', name: 'alice-laptop', user: 'alice', team: 'eng', workspace: '/src/payments', w: 30, shapes: ['anthropic', 'openai'] },
  { id: 'gk_01JALICECI000000000000000', name: 'alice-ci', user: 'alice', team: 'eng', workspace: '/src/payments', w: 8, shapes: ['openai'] },
  { id: 'gk_01JBOBLAPTOP00000000000000', name: 'bob-laptop', user: 'bob', team: 'eng', workspace: '/src/web', w: 16, shapes: ['anthropic'] },
  { id: 'gk_01JDAVEDESKTOP000000000000', name: 'dave-desktop', user: 'dave', team: 'eng', workspace: '/src/web', w: 9, shapes: ['openai', 'anthropic'] },
  { id: 'gk_01JCAROLLAPTOP00000000000', name: 'carol-laptop', user: 'carol', team: 'sales', workspace: '/src/crm', w: 10, shapes: ['openai'] },
  { id: 'gk_01JERINLAPTOP000000000000', name: 'erin-laptop', user: 'erin', team: 'sales', workspace: '/src/crm', w: 5, shapes: ['anthropic'] },
  { id: 'gk_01JFRANKNOTEBOOK000000000', name: 'frank-notebook', user: 'frank', team: 'research', workspace: '/src/research', w: 6, shapes: ['anthropic'] },
  { id: 'gk_01JGRACEUNTEAMED000000000', name: 'grace-laptop', user: 'grace', team: null, workspace: '/src/research', w: 3, shapes: ['openai'] },
  { id: 'gk_01JXSS00000000000000000000', name: XSS_KEY_NAME, user: null, team: null, workspace: '/src/web', w: 4, shapes: ['openai'] },
  { id: 'gk_01JSHAREDCI00000000000000', name: 'shared-ci', user: null, team: null, workspace: '/src/payments', w: 5, shapes: ['anthropic', 'openai'] },
  { id: 'gk_01JIDLE0000000000000000000', name: 'idle-key', user: 'heidi', team: 'sales', workspace: '/src/crm', w: 0, shapes: ['openai'] },
  { id: 'gk_01JIVANLOCAL00000000000000', name: 'ivan-local', user: 'ivan', team: 'ops', workspace: '/src/ops', w: 0, shapes: ['openai'] },
];

// Models: id, provider, $ per million input/output/cache-read/cache-write tokens.
const MODELS = [
  { id: 'claude-sonnet-4-5', provider: 'anthropic', shape: 'anthropic', price: [3, 15, 0.3, 3.75], w: 5 },
  { id: 'claude-haiku-4-5', provider: 'anthropic', shape: 'anthropic', price: [1, 5, 0.1, 1.25], w: 6 },
  { id: 'gpt-5', provider: 'openai', shape: 'openai', price: [1.25, 10, 0.125, 0], w: 3 },
  { id: 'gpt-5-mini', provider: 'openai', shape: 'openai', price: [0.25, 2, 0.025, 0], w: 6 },
];
const ALIAS = { 'claude-haiku-4-5': 'haiku', 'claude-sonnet-4-5': 'sonnet' };

function mulberry32(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick(rnd, items) {
  const total = items.reduce((s, x) => s + x.w, 0);
  let r = rnd() * total;
  for (const x of items) if ((r -= x.w) < 0) return x;
  return items[items.length - 1];
}

let ulidSeq = 0;
function makeCall(rnd, t, opts = {}) {
  const key = opts.key || pick(rnd, KEYS);
  const shape = key.shapes[Math.floor(rnd() * key.shapes.length)];
  const model = opts.model || pick(rnd, MODELS);
  const input = Math.floor(200 + rnd() * 12000);
  const output = Math.floor(20 + rnd() * 1500);
  const cacheRead = model.provider === 'anthropic' && rnd() < 0.5 ? Math.floor(rnd() * 20000) : 0;
  const cacheWrite = model.provider === 'anthropic' && rnd() < 0.2 ? Math.floor(rnd() * 4000) : 0;
  const err = rnd() < 0.04;
  const [pi, po, pcr, pcw] = model.price || [0, 0, 0, 0];
  const priced = !!model.price;
  const cost = priced ? (input * pi + output * po + cacheRead * pcr + cacheWrite * pcw) / 1e6 : null;
  return {
    id: `01JCALL${String(++ulidSeq).padStart(19, '0')}`,
    t,
    key,
    session_id: key.user ? `sess-${key.user}-${Math.floor(t / 3.6e6) % 7}` : null,
    inbound_shape: shape,
    provider: model.provider,
    requested_model: ALIAS[model.id] && rnd() < 0.5 ? ALIAS[model.id] : model.id,
    model: model.id,
    stream: rnd() < 0.6,
    status: err ? 529 : 200,
    error_class: err ? 'OVERLOADED' : null,
    input_tokens: input,
    output_tokens: output,
    cache_read_input_tokens: cacheRead,
    cache_creation_input_tokens: cacheWrite,
    reasoning_tokens: model.id.startsWith('gpt-5') ? Math.floor(output * 0.3) : 0,
    cost_usd: cost,
    cache_savings_usd: priced ? (cacheRead * (pi - pcr)) / 1e6 : 0,
    priced,
    usage_source: rnd() < 0.03 ? 'estimated' : 'provider',
    latency_ms: Math.floor(300 + rnd() * 9000),
    ttft_ms: Math.floor(150 + rnd() * 900),
  };
}

/** Generate the call list, relative to now. */
export function generate(now = Date.now(), seed = 42) {
  const rnd = mulberry32(seed);
  const calls = [];
  const spread = [
    [40, 3600e3], // last hour
    [220, 86400e3], // last day
    [420, 7 * 86400e3],
    [520, 30 * 86400e3],
  ];
  for (const [n, span] of spread) {
    for (let i = 0; i < n; i++) calls.push(makeCall(rnd, now - Math.floor(rnd() * span) - 1000));
  }
  // One unpriced call: a model with no price, 20 minutes ago.
  calls.push(makeCall(rnd, now - 20 * 60e3, { key: KEYS[2], model: { id: 'llama-3.3-70b', provider: 'ollama', price: null } }));
  // ivan-local's only call, unpriced too, 25 minutes ago.
  calls.push(makeCall(rnd, now - 25 * 60e3, { key: KEYS.find((k) => k.name === 'ivan-local'), model: { id: 'llama-3.3-70b', provider: 'ollama', price: null } }));
  calls.sort((a, b) => a.t - b.t);
  return calls;
}

const WINDOWS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3, all: Infinity };

function windowMs(w) {
  return WINDOWS[w || '24h'] ?? null;
}

const untag = (v) => v || 'untagged';

const CAPS = { team: { eng: [4, 3], sales: [5, 4], research: [0.25, 0.2] }, user: { alice: [2.5, 2], bob: [3, 2.5], carol: [0.5, 0.4] } };

/** A quota object as /analytics/by_team and by_user will carry once caps exist. */
function quota(kind, name, spent, now, on) {
  const cap = on && CAPS[kind][name];
  if (!cap) return null;
  const [hard, soft] = cap;
  return {
    window: '30d', hard, soft, spent: round(spent), reserved: 0.02,
    resets_at: iso(Math.ceil(now / (30 * 86400e3)) * 30 * 86400e3),
    state: spent >= hard ? 'hard' : spent >= soft ? 'soft' : 'ok',
  };
}

function select(calls, q, now) {
  const span = windowMs(q.get('window'));
  const from = span === Infinity ? 0 : now - span;
  const f = {
    gateway_key: q.get('gateway_key'), user: q.get('user'), team: q.get('team'),
    workspace: q.get('workspace'), model: q.get('model'),
  };
  return calls.filter((c) => c.t >= from && c.t <= now
    && (!f.gateway_key || c.key.id === f.gateway_key)
    && (!f.user || untag(c.key.user) === f.user)
    && (!f.team || untag(c.key.team) === f.team)
    && (!f.workspace || c.key.workspace === f.workspace)
    && (!f.model || c.model === f.model));
}

function sums(list) {
  const s = {
    cost_usd: 0, calls: 0, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0,
    cache_creation_input_tokens: 0, reasoning_tokens: 0, unpriced_calls: 0, estimated_calls: 0, cache_savings_usd: 0,
  };
  for (const c of list) {
    s.calls++;
    if (c.error_class) s.errors++;
    if (c.cost_usd === null) s.unpriced_calls++;
    else s.cost_usd += c.cost_usd;
    if (c.usage_source === 'estimated') s.estimated_calls++;
    s.input_tokens += c.input_tokens;
    s.output_tokens += c.output_tokens;
    s.cache_read_input_tokens += c.cache_read_input_tokens;
    s.cache_creation_input_tokens += c.cache_creation_input_tokens;
    s.reasoning_tokens += c.reasoning_tokens;
    s.cache_savings_usd += c.cache_savings_usd;
  }
  s.cost_usd = round(s.cost_usd);
  s.cache_savings_usd = round(s.cache_savings_usd);
  return s;
}

/** The cost the API reports for sums s: null when every call is unpriced. */
const knownCost = (s) => (s.calls > 0 && s.unpriced_calls === s.calls ? null : s.cost_usd);

const round = (x) => Math.round(x * 1e8) / 1e8;
const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

function groupBy(list, fn) {
  const m = new Map();
  for (const c of list) {
    const k = fn(c);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(c);
  }
  return m;
}

const BUCKET = { minute: 60e3, hour: 3600e3, day: 86400e3 };

function cost(calls, q, now) {
  const list = select(calls, q, now);
  const by = q.get('group_by') || 'model';
  const span = windowMs(q.get('window'));
  const keyFn = {
    model: (c) => c.model,
    provider: (c) => c.provider,
    key: (c) => c.key.id,
    user: (c) => untag(c.key.user),
    team: (c) => untag(c.key.team),
    workspace: (c) => c.key.workspace,
    session: (c) => c.session_id || '',
    day: (c) => iso(Math.floor(c.t / BUCKET.day) * BUCKET.day),
    hour: (c) => iso(Math.floor(c.t / BUCKET.hour) * BUCKET.hour),
  }[by];
  if (!keyFn) return [400, { error: `group_by must be one of model, provider, key, user, team, workspace, session, day, hour` }];
  const s = sums(list);
  const groups = [...groupBy(list, keyFn)].map(([key, l]) => {
    const g = sums(l);
    delete g.reasoning_tokens;
    delete g.estimated_calls;
    const out = { key, ...g, cost_usd: knownCost(g) };
    if (by === 'key') out.name = l[0].key.name;
    return out;
  });
  if (by === 'day' || by === 'hour') groups.sort((a, b) => a.key.localeCompare(b.key));
  else groups.sort((a, b) => (b.cost_usd ?? 0) - (a.cost_usd ?? 0) || a.key.localeCompare(b.key));
  return [200, {
    window: q.get('window') || '24h', from: iso(span === Infinity ? calls[0]?.t ?? now : now - span), to: iso(now),
    group_by: by, total_cost_usd: knownCost(s), calls: s.calls, errors: s.errors, input_tokens: s.input_tokens,
    output_tokens: s.output_tokens, cache_read_input_tokens: s.cache_read_input_tokens,
    cache_creation_input_tokens: s.cache_creation_input_tokens, reasoning_tokens: s.reasoning_tokens,
    unpriced_calls: s.unpriced_calls, estimated_calls: s.estimated_calls, cache_savings_usd: s.cache_savings_usd, groups,
  }];
}

function byKey(calls, q, now) {
  const list = select(calls, new URLSearchParams({ window: q.get('window') || '24h' }), now);
  const per = groupBy(list, (c) => c.key.id);
  const keys = KEYS.map((k) => {
    const l = per.get(k.id) || [];
    const s = sums(l);
    const last = calls.filter((c) => c.key.id === k.id && c.t <= now).at(-1);
    const shapes = {};
    for (const c of l) shapes[c.inbound_shape] = (shapes[c.inbound_shape] || 0) + 1;
    return {
      gateway_key_id: k.id, name: k.name, user: k.user, team: k.team, workspace: k.workspace,
      cost_usd: knownCost(s), calls: s.calls, unpriced_calls: s.unpriced_calls,
      last_call_at: last ? iso(last.t) : null, inbound_shapes: shapes, quota: null,
    };
  });
  keys.sort((a, b) => (b.cost_usd ?? 0) - (a.cost_usd ?? 0));
  return [200, { window: q.get('window') || '24h', keys }];
}

function byUser(calls, q, now, opts) {
  const list = select(calls, new URLSearchParams({ window: q.get('window') || '24h' }), now);
  const users = [...groupBy(list, (c) => untag(c.key.user))].map(([user, l]) => {
    const s = sums(l);
    return { user, cost_usd: knownCost(s), calls: s.calls, unpriced_calls: s.unpriced_calls, keys: new Set(l.map((c) => c.key.id)).size, quota: quota('user', user, s.cost_usd, now, opts.quotas) };
  });
  users.sort((a, b) => (b.cost_usd ?? 0) - (a.cost_usd ?? 0));
  return [200, { window: q.get('window') || '24h', users }];
}

function byTeam(calls, q, now, opts) {
  const list = select(calls, new URLSearchParams({ window: q.get('window') || '24h' }), now);
  const teams = [...groupBy(list, (c) => untag(c.key.team))].map(([team, l]) => {
    const s = sums(l);
    const byUserArr = [...groupBy(l, (c) => untag(c.key.user))].map(([user, ul]) => {
      const us = sums(ul);
      return { user, cost_usd: knownCost(us), calls: us.calls, unpriced_calls: us.unpriced_calls };
    }).sort((a, b) => (b.cost_usd ?? 0) - (a.cost_usd ?? 0));
    return {
      team, cost_usd: knownCost(s), calls: s.calls, unpriced_calls: s.unpriced_calls,
      users: byUserArr.filter((u) => u.user !== 'untagged').length, quota: quota('team', team, s.cost_usd, now, opts.quotas), by_user: byUserArr,
    };
  });
  teams.sort((a, b) => (b.cost_usd ?? 0) - (a.cost_usd ?? 0));
  return [200, { window: q.get('window') || '24h', teams }];
}

function activity(calls, q, now) {
  const list = select(calls, q, now);
  const w = q.get('window') || '24h';
  // As the gateway's seriesGrain: minutes up to 2h, hours up to 48h, days beyond.
  const bucket = w === '1h' ? 'minute' : w === '24h' ? 'hour' : 'day';
  const size = BUCKET[bucket];
  const series = [...groupBy(list, (c) => Math.floor(c.t / size) * size)].map(([t, l]) => {
    const s = sums(l);
    return { t: iso(t), calls: s.calls, errors: s.errors, cost_usd: knownCost(s), input_tokens: s.input_tokens, output_tokens: s.output_tokens };
  }).sort((a, b) => a.t.localeCompare(b.t));
  const limit = Math.max(0, Math.min(500, parseInt(q.get('limit') || '50', 10) || 0));
  const recent = list.slice(-limit).reverse().slice(0, limit).map((c) => ({
    id: c.id, time: new Date(c.t).toISOString(), gateway_key_id: c.key.id, key_name: c.key.name, user: c.key.user,
    team: c.key.team, workspace: c.key.workspace, session_id: c.session_id, inbound_shape: c.inbound_shape,
    provider: c.provider, requested_model: c.requested_model, model: c.model, stream: c.stream, status: c.status,
    error_class: c.error_class, input_tokens: c.input_tokens, output_tokens: c.output_tokens,
    cache_read_input_tokens: c.cache_read_input_tokens, cache_creation_input_tokens: c.cache_creation_input_tokens,
    cost_usd: c.cost_usd, priced: c.priced, usage_source: c.usage_source, latency_ms: c.latency_ms, ttft_ms: c.ttft_ms,
  }));
  return [200, { window: w, bucket, series, recent: limit === 0 ? [] : recent }];
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json' };

export function createServer({ now: nowFn = () => Date.now(), quotas = process.env.METIS_FAKE_QUOTAS === '1' } = {}) {
  const opts = { quotas };
  const calls = generate(nowFn());
  const rnd = mulberry32(7);
  const handlers = { cost, by_key: byKey, by_user: byUser, by_team: byTeam, activity };
  return http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const send = (status, body, type = 'application/json') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-cache', 'Metis-API-Version': '1.0' });
      res.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    };
    if (url.pathname === '/__fake') return send(200, { fake: true });
    if (url.pathname === '/__fake/add' && req.method === 'POST') {
      calls.push(makeCall(rnd, Date.now(), { key: KEYS[0], model: MODELS[0] }));
      return send(200, { calls: calls.length });
    }
    if (url.pathname === '/health') return send(200, { status: 'ok' });
    const m = url.pathname.match(/^\/analytics\/([a-z_]+)$/);
    if (m) {
      const fn = handlers[m[1]];
      if (!fn) return send(404, { error: 'not found' });
      if (windowMs(url.searchParams.get('window')) === null) return send(400, { error: 'window must be one of 1h, 24h, 7d, 30d, all' });
      const [status, body] = fn(calls, url.searchParams, nowFn(), opts);
      return send(status, body);
    }
    if (url.pathname === '/dashboard') {
      res.writeHead(301, { Location: '/dashboard/' + url.search });
      return res.end();
    }
    if (url.pathname.startsWith('/dashboard/')) {
      const rel = url.pathname.slice('/dashboard/'.length) || 'index.html';
      const file = path.resolve(DIST, rel);
      if (!file.startsWith(DIST + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return send(404, 'not found', 'text/plain');
      return send(200, fs.readFileSync(file), TYPES[path.extname(file)] || 'text/plain; charset=utf-8');
    }
    send(404, 'not found', 'text/plain');
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = parseInt(process.argv[2] || process.env.PORT || '8421', 10);
  const srv = createServer();
  srv.listen(port, '127.0.0.1', () => {
    console.log(`fake analytics on http://127.0.0.1:${srv.address().port}/dashboard/`);
  });
}
