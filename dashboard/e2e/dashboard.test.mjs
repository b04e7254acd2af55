// Browser tests of the Metis dashboard: Debian chromium driven by
// playwright-core, under node's built-in test runner.
//
//   METIS_ANALYTICS_URL=http://127.0.0.1:8421 node --test dashboard.test.mjs
//
// METIS_ANALYTICS_URL is the origin that serves /dashboard/ and /analytics/*.
// Without it the tests start e2e/fakeapi.mjs on a free port. Every figure the
// tests check is compared with what they fetch from the same analytics API,
// so they hold on any data; they assume only that the data has calls in the
// window and a gateway key named `<img src=x onerror=alert(1)>`.
//
// Screenshots go to METIS_SCREENSHOTS (default /tmp/metis-dashboard-screenshots).
// With METIS_GATEWAY_URL and METIS_GATEWAY_TOKEN (a gateway key) the
// auto-refresh test sends one real call through that gateway and waits for the
// page to count it (run-with-gateway.sh sets both).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import * as fmt from '../dist/js/format.js';
import { fillSeries } from '../dist/js/chart.js';

const XSS = '<img src=x onerror=alert(1)>';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = process.env.METIS_SCREENSHOTS || '/tmp/metis-dashboard-screenshots';
const FILTERS = ['gateway_key', 'user', 'team', 'workspace', 'model'];

let BASE = process.env.METIS_ANALYTICS_URL?.replace(/\/+$/, '');
let fakeServer = null;
let isFake = false;
let browser;
let W = '24h'; // the window the tests look at: the first of 24h, 7d, 30d with calls

// ---------------------------------------------------------------- helpers

async function api(name, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== undefined && v !== null));
  const res = await fetch(`${BASE}/analytics/${name}?${q}`);
  assert.equal(res.status, 200, `GET /analytics/${name}?${q}: ${res.status}`);
  return res.json();
}

/** The canonical scope key the page writes to data-rendered. */
function scopeKey(params) {
  const p = { window: params.window };
  for (const f of FILTERS) if (params[f]) p[f] = params[f];
  return new URLSearchParams(p).toString();
}

const exact = (s) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

const pages = [];

/** A new page that records dialogs, page errors and every request it makes. */
async function newPage(viewport = { width: 1366, height: 900 }, origin = new URL(BASE).origin, contextOptions = {}) {
  const context = await browser.newContext({ viewport, ...contextOptions });
  const page = await context.newPage();
  const rec = { dialogs: [], errors: [], requests: [], page, context, origin };
  page.on('dialog', (d) => { rec.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => rec.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) rec.errors.push(m.text()); });
  page.on('request', (r) => rec.requests.push(r.url()));
  pages.push(rec);
  return rec;
}

async function gen(page, tab) {
  return page.evaluate((t) => Number(document.querySelector(`#panel-${t}`).dataset.gen || 0), tab);
}

/** Wait until the tab's panel shows data for exactly this scope. */
async function rendered(page, tab, key, afterGen = 0) {
  await page.waitForFunction(([t, k, g]) => {
    const p = document.querySelector(`#panel-${t}`);
    return p && !p.hidden && p.dataset.rendered === k && Number(p.dataset.gen || 0) > g && !p.hasAttribute('aria-busy');
  }, [tab, key, afterGen], { timeout: 15000 });
}

async function open(page, query, tab, key) {
  await page.goto(`${BASE}/dashboard/?${query}`);
  await rendered(page, tab, key);
}

/**
 * Compare the page with the API. The window slides while a test runs, so on a
 * mismatch the API is fetched again and the page refreshed, a few times.
 */
async function settle(page, tab, fetchApi, check) {
  let lastErr;
  for (let attempt = 0; attempt < 4; attempt++) {
    const data = await fetchApi();
    try {
      await check(data);
      return data;
    } catch (e) {
      lastErr = e;
      const g = await gen(page, tab);
      const key = await page.evaluate((t) => document.querySelector(`#panel-${t}`).dataset.rendered, tab);
      await page.click('#refresh');
      await rendered(page, tab, key, g);
    }
  }
  throw lastErr;
}

async function shot(page, name) {
  const file = `${SHOTS}/${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const metric = (page, m) => page.$eval(`[data-metric="${m}"]`, (el) => ({ text: el.textContent, value: el.dataset.value }));

async function tilesOf(page) {
  return page.$$eval('.panel:not([hidden]) [data-metric]', (els) => Object.fromEntries(els.map((e) => [e.dataset.metric, { text: e.textContent, value: e.dataset.value }])));
}

function near(a, b, msg) {
  assert.ok(Math.abs(Number(a) - Number(b)) < 1e-9, `${msg}: ${a} != ${b}`);
}

async function checkCostTiles(page, c) {
  const t = await tilesOf(page);
  assert.equal(t.total_cost_usd.text, fmt.money(c.total_cost_usd), 'total spend');
  if (c.total_cost_usd === null) assert.equal(t.total_cost_usd.value, 'null', 'total spend value: unknown');
  else near(t.total_cost_usd.value, c.total_cost_usd, 'total spend value');
  assert.equal(t.calls.text, fmt.int(c.calls), 'calls');
  assert.equal(t.input_tokens.text, fmt.tokens(c.input_tokens), 'input tokens');
  assert.equal(t.output_tokens.text, fmt.tokens(c.output_tokens), 'output tokens');
  assert.equal(t.cache_savings_usd.text, fmt.money(c.cache_savings_usd || 0), 'cache savings');
  assert.equal(t.unpriced_calls.text, fmt.int(c.unpriced_calls || 0), 'unpriced calls');
  // Refused requests (a budget's 429 among them) cost nothing and are in no
  // other figure: the Calls tile says how many there were.
  const callsSub = await page.$eval('.panel:not([hidden]) [data-metric="calls"]', (e) => e.parentElement.querySelector('.tile-sub')?.textContent || '');
  if (c.rejected) assert.ok(callsSub.includes(`${fmt.int(c.rejected)} refused`), `calls tile "${callsSub}" counts the ${c.rejected} refused`);
  else assert.ok(!callsSub.includes('refused'), `calls tile "${callsSub}" with no refusal`);
}

/** The Activity tiles' figures; cost is null when no call was priced (a bucket's cost_usd is null when none of its calls was). */
function activitySums(a) {
  const s = { calls: 0, errors: 0, cost: 0, input: 0, output: 0 };
  let priced = false;
  for (const p of a.series || []) {
    s.calls += p.calls || 0;
    s.errors += p.errors || 0;
    if (p.cost_usd !== null && p.cost_usd !== undefined) {
      s.cost += p.cost_usd;
      if (p.calls) priced = true;
    }
    s.input += p.input_tokens || 0;
    s.output += p.output_tokens || 0;
  }
  if (s.calls > 0 && !priced) s.cost = null;
  return s;
}

async function checkActivityTiles(page, a) {
  const s = activitySums(a);
  const t = await tilesOf(page);
  assert.equal(t.act_calls.text, fmt.int(s.calls), 'activity calls');
  assert.equal(t.act_errors.text, fmt.int(s.errors), 'activity errors');
  assert.equal(t.act_cost.text, fmt.money(s.cost), 'activity spend');
  assert.equal(t.act_input_tokens.text, fmt.tokens(s.input), 'activity input tokens');
  assert.equal(t.act_output_tokens.text, fmt.tokens(s.output), 'activity output tokens');
}

/** Rows of an identity table: name text, cost text/value, calls value. */
async function identityRows(page, kind) {
  return page.$$eval(`table.ident-${kind} > tbody > tr:not(.sub-row):not(.empty)`, (trs, k) => trs.map((tr) => ({
    name: (k === 'team' ? tr.querySelector('.team-name') : k === 'user' ? tr.querySelector('.user-name') : tr.querySelector('.key-link')).textContent,
    id: tr.dataset.key,
    cost: tr.querySelector('td.cost').textContent,
    costValue: tr.querySelector('td.cost').dataset.value,
    calls: tr.querySelector('td.calls').dataset.value,
    quota: tr.querySelector('td.quota')?.textContent,
    filter: !!tr.querySelector('a.btn-filter'),
    last: tr.querySelector('td.last')?.textContent,
    shapes: tr.querySelector('td.shapes')?.textContent,
  })), kind);
}

function costText(cost, calls, unpriced) {
  if (cost === null || cost === undefined || (unpriced > 0 && unpriced >= calls && !cost)) return 'unpriced';
  return fmt.money(cost) + (unpriced > 0 ? ` +${fmt.int(unpriced)} unpriced` : '');
}

const QUOTA_LABEL = { ok: 'ok', soft: 'soft cap', hard: 'hard cap' };

/** The Quota cell as the page must show an API quota: "—", or "$spent / $hard <state>". */
function quotaText(q) {
  if (q === null || q === undefined) return '—';
  return `${fmt.moneyExact(q.spent ?? 0)} / ${fmt.moneyExact(q.hard)} ${QUOTA_LABEL[q.state]}`;
}

/** One table's rows with their Quota cells: name, text, data-state and title. */
async function quotaCells(page, kind) {
  return page.$$eval(`table.ident-${kind} > tbody > tr:not(.sub-row):not(.empty)`, (trs, k) => trs.map((tr) => {
    const td = tr.querySelector('td.quota');
    return {
      name: (k === 'team' ? tr.querySelector('.team-name') : k === 'user' ? tr.querySelector('.user-name') : tr.querySelector('.key-link')).textContent,
      present: !!td, text: td?.textContent ?? null, state: td?.dataset.state ?? null, title: td?.title ?? '',
      badge: td?.querySelector('.badge')?.className ?? null,
    };
  }), kind);
}

/** Every row's Quota cell equals the API's quota for that row (data in sort order). */
function expectQuotaCells(kind, want, cells, name) {
  assert.deepEqual(cells.map((c) => c.name), want.map(name), `${kind} rows`);
  want.forEach((w, i) => {
    const c = cells[i];
    const q = w.quota;
    assert.ok(c.present, `${kind} ${name(w)}: a Quota cell`);
    assert.equal(c.text, quotaText(q), `${kind} ${name(w)} quota`);
    if (q === null || q === undefined) {
      assert.equal(c.state, null, `${kind} ${name(w)}: no data-state without a quota`);
      return;
    }
    assert.ok(['ok', 'soft', 'hard'].includes(q.state), `${kind} ${name(w)}: the API state ${q.state}`);
    assert.equal(c.state, q.state, `${kind} ${name(w)} data-state`);
    assert.equal(c.badge, `badge badge-quota-${q.state}`, `${kind} ${name(w)} badge`);
    if (q.window) assert.ok(c.title.includes(`window ${q.window}`), `${kind} ${name(w)} title names the window: ${c.title}`);
    if (q.soft !== null && q.soft !== undefined) assert.ok(c.title.includes(`soft ${fmt.moneyExact(q.soft)}`), `${kind} ${name(w)} title names the soft cap: ${c.title}`);
  });
}

const byIdent = {
  team: { list: (d) => d.teams, name: (r) => r.team, untagged: (r) => r.team === fmt.UNTAGGED },
  user: { list: (d) => d.users, name: (r) => r.user, untagged: (r) => r.user === fmt.UNTAGGED },
  key: { list: (d) => d.keys, name: (r) => r.name || r.gateway_key_id, untagged: () => false },
};

function expectIdentityRows(kind, data, rows, sort) {
  const d = byIdent[kind];
  const want = fmt.sortRows(d.list(data) || [], sort, d.name, d.untagged);
  assert.deepEqual(rows.map((r) => r.name), want.map(d.name), `${kind} rows in ${sort} order`);
  want.forEach((w, i) => {
    const r = rows[i];
    assert.equal(r.cost, costText(w.cost_usd, w.calls, w.unpriced_calls || 0), `${kind} ${d.name(w)} cost`);
    assert.equal(Number(r.calls), w.calls, `${kind} ${d.name(w)} calls`);
    assert.equal(r.quota, quotaText(w.quota), `${kind} ${d.name(w)} quota`);
    if (kind !== 'key') {
      assert.equal(r.filter, !d.untagged(w), `${kind} ${d.name(w)}: a Filter action only on tagged rows`);
    } else {
      assert.equal(r.shapes, fmt.shapes(w.inbound_shapes), `key ${d.name(w)} shapes`);
      assert.match(r.last, /^(just now|\d+[smhd] ago|—)$/, `key ${d.name(w)} last call`);
      if (!w.last_call_at) assert.equal(r.last, '—');
    }
  });
}

async function identityData() {
  const [t, u, k] = await Promise.all([api('by_team', { window: W }), api('by_user', { window: W }), api('by_key', { window: W })]);
  return { teams: t.teams, users: u.users, keys: k.keys };
}

function expectedCallouts(data) {
  return {
    team: fmt.topShare((data.teams || []).map((t) => ({ name: t.team, cost: t.cost_usd, untagged: t.team === fmt.UNTAGGED }))),
    user: fmt.topShare((data.users || []).map((u) => ({ name: u.user, cost: u.cost_usd, untagged: u.user === fmt.UNTAGGED }))),
    key: fmt.topShare((data.keys || []).map((k) => ({ name: k.name || k.gateway_key_id, cost: k.cost_usd }))),
  };
}

async function visibleTiles(page) {
  return page.$$eval('#panel-identity [data-tile]', (els) => els.filter((e) => !e.hidden && e.offsetParent !== null).map((e) => e.dataset.tile));
}

// ---------------------------------------------------------------- setup

before(async () => {
  if (!BASE) {
    const { createServer } = await import('./fakeapi.mjs');
    fakeServer = createServer();
    await new Promise((r) => fakeServer.listen(0, '127.0.0.1', r));
    BASE = `http://127.0.0.1:${fakeServer.address().port}`;
    console.log(`METIS_ANALYTICS_URL not set: using the fake analytics API at ${BASE}`);
  }
  try {
    // Caddy answers a path no handler takes with an empty 200, so look at the body.
    const res = await fetch(`${BASE}/__fake`);
    isFake = res.ok && (await res.json().catch(() => ({}))).fake === true;
  } catch { /* not the fake */ }
  for (const w of ['24h', '7d', '30d']) {
    W = w;
    if ((await api('cost', { window: w })).calls > 0) break;
  }
  fs.mkdirSync(SHOTS, { recursive: true });
  console.log(`dashboard: ${BASE}/dashboard/  window: ${W}`);
  console.log(`screenshots: ${SHOTS}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

afterEach(async () => {
  while (pages.length) {
    const rec = pages.pop();
    const { origin } = rec;
    await rec.context.close();
    assert.deepEqual(rec.dialogs, [], 'no dialog may open');
    assert.deepEqual(rec.errors, [], 'no script errors');
    const foreign = rec.requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('data:'));
    assert.deepEqual(foreign, [], 'no request beyond the gateway origin');
  }
});

after(async () => {
  if (browser) await browser.close();
  if (fakeServer) fakeServer.close();
  console.log(`screenshots saved in ${SHOTS}`);
});

// ---------------------------------------------------------------- tests

test('Cost tab: totals and breakdowns equal /analytics/cost', async () => {
  const { page } = await newPage();
  await open(page, `window=${W}&live=0`, 'cost', scopeKey({ window: W }));
  assert.equal(await page.getAttribute('#tab-cost', 'aria-selected'), 'true');
  await settle(page, 'cost', () => api('cost', { window: W, group_by: 'model' }), (c) => checkCostTiles(page, c));
  for (const by of ['model', 'provider', 'workspace']) {
    await settle(page, 'cost', () => api('cost', { window: W, group_by: by }), async (c) => {
      const rows = await page.$$eval(`table.breakdown-${by} tbody tr[data-key]`, (trs) => trs.map((tr) => ({
        key: tr.dataset.key, name: tr.querySelector('td.name a, td.name span').textContent,
        cost: tr.querySelector('td.cost').textContent, calls: Number(tr.querySelector('td.calls').dataset.value),
      })));
      assert.equal(rows.length, c.groups.length, `${by}: one row per group`);
      for (const g of c.groups) {
        const r = rows.find((x) => x.key === String(g.key ?? ''));
        assert.ok(r, `${by}: row for ${g.key}`);
        assert.equal(r.name, fmt.groupLabel(g));
        assert.equal(r.cost, costText(g.cost_usd, g.calls, g.unpriced_calls || 0), `${by} ${g.key} cost`);
        assert.equal(r.calls, g.calls, `${by} ${g.key} calls`);
        if (!g.cost_usd && g.unpriced_calls >= g.calls) assert.ok(!/\$0/.test(r.cost), 'an unpriced group is never $0');
      }
    });
  }
  assert.ok(await page.$('#panel-cost .chart canvas'), 'the spend chart is drawn');
  console.log(`${await shot(page, 'cost')}`);
});

test('Activity tab: series totals and recent calls equal /analytics/activity', async () => {
  const { page } = await newPage();
  await open(page, `tab=activity&window=${W}&live=0`, 'activity', scopeKey({ window: W }));
  await settle(page, 'activity', () => api('activity', { window: W, limit: 50 }), async (a) => {
    await checkActivityTiles(page, a);
    const rows = await page.$$eval('table.recent tbody tr[data-id]', (trs) => trs.map((tr) => ({
      id: tr.dataset.id, key: tr.querySelector('.key-name').textContent, cost: tr.querySelector('td.cost').textContent,
      model: tr.children[2].querySelector('span').textContent, shape: tr.querySelector('.shape').textContent,
    })));
    assert.deepEqual(rows.map((r) => r.id), (a.recent || []).map((c) => c.id), 'recent calls, newest first');
    a.recent.forEach((c, i) => {
      assert.equal(rows[i].key, c.key_name || c.gateway_key_id);
      assert.equal(rows[i].model, c.model || c.requested_model);
      assert.equal(rows[i].shape, c.inbound_shape);
      if (c.cost_usd === null || c.cost_usd === undefined) assert.match(rows[i].cost, /^unpriced/, `call ${c.id}: unpriced, not $0`);
      else assert.ok(rows[i].cost.startsWith(fmt.money(c.cost_usd)), `call ${c.id} cost`);
    });
  });
  assert.ok(await page.$('#panel-activity .chart canvas'), 'the calls chart is drawn');
  console.log(`${await shot(page, 'activity')}`);
});

test('a scope whose calls are all unpriced reads "unpriced" on Cost and Activity, never $0', async () => {
  const groups = (await api('cost', { window: W, group_by: 'model' })).groups || [];
  const g = groups.find((x) => x.calls > 0 && x.unpriced_calls === x.calls);
  // The data always has one (run-with-gateway.sh sends openai:some-unpriced-model,
  // fakeapi.mjs serves llama-3.3-70b): none means unpriced calls were priced.
  assert.ok(g, `a model in the ${W} window has only unpriced calls`);
  assert.equal(g.cost_usd, null, `/analytics/cost: the all-unpriced model ${g.key} has cost_usd null`);
  const scope = { window: W, model: g.key };
  const { page } = await newPage();
  await open(page, `${new URLSearchParams({ ...scope, live: '0' })}`, 'cost', scopeKey(scope));
  await settle(page, 'cost', () => api('cost', { ...scope, group_by: 'model' }), async (c) => {
    assert.equal(c.total_cost_usd, null, '/analytics/cost total for the scope is null');
    await checkCostTiles(page, c);
    const t = await tilesOf(page);
    assert.equal(t.total_cost_usd.text, 'unpriced', 'total spend tile');
    const costs = await page.$$eval('table.breakdown-model tbody tr[data-key] td.cost', (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(costs, ['unpriced'], 'the model row');
  });
  for (const text of await page.$$eval('#panel-cost .tile-value, #panel-cost td', (els) => els.map((e) => e.textContent))) {
    assert.ok(!/NaN|undefined|null/.test(text), `Cost tab: ${text}`);
  }
  await page.click('#tab-activity');
  await rendered(page, 'activity', scopeKey(scope));
  await settle(page, 'activity', () => api('activity', { ...scope, limit: 50 }), async (a) => {
    for (const p of a.series || []) if (p.calls > 0) assert.equal(p.cost_usd, null, `/analytics/activity bucket ${p.t}: cost_usd null`);
    await checkActivityTiles(page, a);
    const t = await tilesOf(page);
    assert.equal(t.act_cost.text, 'unpriced', 'activity spend tile');
    assert.equal(t.act_cost.value, 'null', 'activity spend value');
  });
  console.log(`${await shot(page, 'unpriced-scope')}`);
});

test('Spend by identity: tables, sort, pills and the >50% callouts', async () => {
  const { page } = await newPage();
  await open(page, `tab=identity&window=${W}&live=0`, 'identity', `window=${W}`);
  assert.deepEqual(await visibleTiles(page), ['team', 'user', 'key'], 'All shows every tile');
  const data = await settle(page, 'identity', identityData, async (d) => {
    for (const kind of ['team', 'user', 'key']) expectIdentityRows(kind, d, await identityRows(page, kind), 'cost');
    const want = expectedCallouts(d);
    for (const kind of ['team', 'user', 'key']) {
      const el = await page.$(`[data-callout="${kind}"]`);
      if (!want[kind]) assert.equal(el, null, `no ${kind} callout: nobody holds more than half`);
      else {
        assert.ok(el, `a ${kind} callout: ${want[kind].name} holds ${fmt.percent(want[kind].share)}`);
        const text = await el.textContent();
        assert.ok(text.includes(want[kind].name) && text.includes(fmt.percent(want[kind].share)), `${kind} callout text: ${text}`);
        assert.match(text, /^⚠ TOP (TEAM|DEVELOPER|KEY) .* of (team|user|key) spend in this window$/);
      }
    }
  });
  console.log(`${await shot(page, 'identity')}`);

  // Scope pills switch which tiles show.
  for (const [pill, tiles] of [['team', ['team']], ['user', ['user']], ['key', ['key']], ['all', ['team', 'user', 'key']]]) {
    await page.click(`.pill[data-scope="${pill}"]`);
    assert.equal(await page.getAttribute(`.pill[data-scope="${pill}"]`, 'aria-pressed'), 'true');
    assert.deepEqual(await visibleTiles(page), tiles, `pill ${pill}`);
    assert.equal(new URL(page.url()).searchParams.get('scope'), pill === 'all' ? null : pill);
  }

  // Sort by calls, then back to cost.
  await page.click('.btn-sort');
  assert.equal(new URL(page.url()).searchParams.get('sort'), 'calls');
  assert.match(await page.textContent('.btn-sort'), /calls/);
  await settle(page, 'identity', identityData, async (d) => {
    for (const kind of ['team', 'user', 'key']) expectIdentityRows(kind, d, await identityRows(page, kind), 'calls');
  });
  await page.click('table.ident-user th .th-sort >> text=Cost');
  assert.equal(new URL(page.url()).searchParams.get('sort'), null);
  assert.ok(data.teams.length > 0, 'the data has teams');
});

test('a key, user or team whose calls are all unpriced reads "unpriced" on Spend by identity, never $0', async () => {
  const allUnpriced = (r) => r.calls > 0 && r.unpriced_calls === r.calls;
  const d0 = await identityData();
  const found = ['team', 'user', 'key'].filter((kind) => (byIdent[kind].list(d0) || []).some(allUnpriced));
  // Always some (ivan-local's only call is unpriced): none means it was priced.
  assert.ok(found.length > 0, `a key, user or team in the ${W} window has only unpriced calls`);
  const { page } = await newPage();
  await open(page, `tab=identity&window=${W}&live=0`, 'identity', `window=${W}`);
  let team = null;
  await settle(page, 'identity', identityData, async (d) => {
    for (const kind of found) {
      const { list, name } = byIdent[kind];
      const want = (list(d) || []).filter(allUnpriced);
      assert.ok(want.length, `${kind}: a row with only unpriced calls`);
      const rows = await identityRows(page, kind);
      for (const w of want) {
        assert.equal(w.cost_usd, null, `/analytics/by_${kind} ${name(w)}: cost_usd null`);
        const r = rows.find((x) => x.name === name(w));
        assert.ok(r, `${kind} ${name(w)}: a row`);
        assert.equal(r.cost, 'unpriced', `${kind} ${name(w)} cost`);
        assert.equal(r.costValue, 'null', `${kind} ${name(w)} data-value`);
      }
    }
    team = (d.teams || []).find((t) => allUnpriced(t) && t.team !== fmt.UNTAGGED) || null;
  });
  for (const text of await page.$$eval('#panel-identity td, #panel-identity .callout', (els) => els.map((e) => e.textContent))) {
    assert.ok(!/NaN|undefined|null|Infinity/.test(text), `Spend by identity: ${text}`);
  }
  if (team) {
    // Its users, in the expansion, are unpriced too.
    const row = page.locator('table.ident-team tr.team-row', { has: page.locator('.team-name', { hasText: exact(team.team) }) });
    await row.locator('button.expander').click();
    const subId = await row.locator('button.expander').getAttribute('aria-controls');
    const sub = await page.$$eval(`#${subId} tbody tr[data-user]`, (trs) => trs.map((tr) => ({ user: tr.dataset.user, cost: tr.children[1].textContent, value: tr.children[1].dataset.value })));
    assert.deepEqual(sub.map((s) => s.user).sort(), team.by_user.map((u) => u.user).sort(), `team ${team.team}: its users`);
    for (const s of sub) assert.deepEqual([s.cost, s.value], ['unpriced', 'null'], `team ${team.team} user ${s.user}`);
  }
  console.log(`${await shot(page, 'identity-unpriced')}`);
});

test('a team row expands to its users; a user link drills Cost and Activity down', async () => {
  const { page, requests } = await newPage();
  const d = await identityData();
  const team = fmt.sortRows(d.teams, 'cost', (t) => t.team, (t) => t.team === fmt.UNTAGGED)
    .find((t) => t.team !== fmt.UNTAGGED && (t.by_user || []).some((u) => u.user !== fmt.UNTAGGED));
  assert.ok(team, 'the data has a team with a tagged user');
  await open(page, `tab=identity&window=${W}&scope=team&live=0`, 'identity', `window=${W}`);
  const before = requests.length;
  const row = page.locator('table.ident-team tr.team-row', { has: page.locator('.team-name', { hasText: exact(team.team) }) });
  const expander = row.locator('button.expander');
  assert.equal(await expander.getAttribute('aria-expanded'), 'false');
  await expander.click();
  assert.equal(await expander.getAttribute('aria-expanded'), 'true');
  assert.equal(requests.length, before, 'expanding needs no request');
  const subId = await expander.getAttribute('aria-controls');
  const sub = await page.$$eval(`#${subId} tbody tr[data-user]`, (trs) => trs.map((tr) => ({
    user: tr.dataset.user, text: tr.children[0].textContent, cost: tr.children[1].textContent, calls: Number(tr.children[2].dataset.value), link: !!tr.querySelector('a.user-link'),
  })));
  const want = fmt.sortRows(team.by_user, 'cost', (u) => u.user, (u) => u.user === fmt.UNTAGGED);
  assert.deepEqual(sub.map((s) => s.user), want.map((u) => u.user), 'the expansion lists the by_user array');
  want.forEach((u, i) => {
    assert.equal(sub[i].cost, costText(u.cost_usd, u.calls, u.unpriced_calls || 0), `${u.user} cost`);
    assert.equal(sub[i].calls, u.calls);
    assert.equal(sub[i].link, u.user !== fmt.UNTAGGED, 'tagged users are links, untagged is not');
  });
  assert.ok(new URL(page.url()).searchParams.getAll('open').includes(team.team), 'the open row is in the URL');
  console.log(`${await shot(page, 'identity-team-expanded')}`);

  // Collapse and expand again with the keyboard.
  await expander.focus();
  await page.keyboard.press('Enter');
  assert.equal(await page.locator(`table.ident-team button.expander[aria-controls="${subId}"]`).getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator(`table.ident-team button.expander[aria-controls="${subId}"]`).getAttribute('aria-expanded'), 'true');

  // A user under a team drills down to that user's calls in the team: the
  // figures of the row clicked.
  const user = want.find((u) => u.user !== fmt.UNTAGGED).user;
  await page.locator(`#${subId} tr[data-user] a.user-link`, { hasText: exact(user) }).click();
  const key = scopeKey({ window: W, user, team: team.team });
  await rendered(page, 'cost', key);
  assert.equal(new URL(page.url()).searchParams.get('user'), user);
  assert.equal(new URL(page.url()).searchParams.get('team'), team.team);
  assert.equal(await page.textContent('#panel-cost .chip[data-filter="user"] .chip-value'), user);
  await settle(page, 'cost', () => api('cost', { window: W, group_by: 'model', user, team: team.team }), (c) => checkCostTiles(page, c));

  // The same filter holds on Activity.
  await page.click('#tab-activity');
  await rendered(page, 'activity', key);
  assert.equal(await page.textContent('#panel-activity .chip[data-filter="user"] .chip-value'), user);
  await settle(page, 'activity', () => api('activity', { window: W, user, team: team.team, limit: 50 }), async (a) => {
    await checkActivityTiles(page, a);
    const keys = await page.$$eval('table.recent tbody tr[data-id]', (trs) => trs.map((tr) => tr.dataset.id));
    assert.deepEqual(keys, a.recent.map((c) => c.id));
  });
  console.log(`${await shot(page, 'activity-user-filter')}`);

  // Clearing the chips goes back to the team, then to everyone.
  await page.focus('#panel-activity .chip[data-filter="user"] .chip-clear');
  await page.keyboard.press('Enter');
  await rendered(page, 'activity', scopeKey({ window: W, team: team.team }));
  // The cleared chip is gone; keyboard focus stays in the panel, not back
  // at the top of the page.
  assert.notEqual(await page.evaluate(() => document.activeElement.tagName), 'BODY', 'focus after clearing a chip');
  await page.click('#panel-activity .chip[data-filter="team"] .chip-clear');
  await rendered(page, 'activity', scopeKey({ window: W }));
  assert.equal(await page.$('#panel-activity .chip'), null);
  assert.equal(new URL(page.url()).searchParams.get('user'), null);
  await settle(page, 'activity', () => api('activity', { window: W, limit: 50 }), (a) => checkActivityTiles(page, a));
});

test("a team's Filter action scopes Cost and Activity to the team", async () => {
  const { page } = await newPage();
  const d = await identityData();
  const team = fmt.sortRows(d.teams, 'cost', (t) => t.team, (t) => t.team === fmt.UNTAGGED).find((t) => t.team !== fmt.UNTAGGED);
  assert.ok(team, 'the data has a tagged team');
  await open(page, `tab=identity&window=${W}&live=0`, 'identity', `window=${W}`);
  await page.locator('table.ident-team tr.team-row', { has: page.locator('.team-name', { hasText: exact(team.team) }) }).locator('a.btn-filter').click();
  const key = scopeKey({ window: W, team: team.team });
  await rendered(page, 'cost', key);
  assert.equal(new URL(page.url()).searchParams.get('team'), team.team);
  assert.equal(await page.textContent('#panel-cost .chip[data-filter="team"] .chip-kind'), 'team');
  assert.equal(await page.textContent('#panel-cost .chip[data-filter="team"] .chip-value'), team.team);
  const c = await settle(page, 'cost', () => api('cost', { window: W, group_by: 'model', team: team.team }), (x) => checkCostTiles(page, x));
  const all = await api('cost', { window: W, group_by: 'model' });
  if (all.calls !== c.calls) assert.notEqual((await metric(page, 'calls')).text, fmt.int(all.calls), 'the figures changed');
  console.log(`${await shot(page, 'cost-team-filter')}`);
  await page.click('#tab-activity');
  await rendered(page, 'activity', key);
  await settle(page, 'activity', () => api('activity', { window: W, team: team.team, limit: 50 }), (a) => checkActivityTiles(page, a));
  // Back returns to the unfiltered identity view.
  await page.goBack();
  await page.goBack();
  await rendered(page, 'identity', `window=${W}`);
});

test('a key named like HTML renders as text, and drilling into it keeps it text', async () => {
  const { page, dialogs } = await newPage();
  const k = await api('by_key', { window: W });
  const key = (k.keys || []).find((x) => x.name === XSS);
  assert.ok(key, `the data has a key named ${XSS}`);
  await open(page, `tab=identity&window=${W}&scope=key&live=0`, 'identity', `window=${W}`);
  const link = page.locator('table.ident-key a.key-link', { hasText: exact(XSS) });
  assert.equal(await link.count(), 1);
  assert.ok(await link.isVisible(), 'the name is visible');
  assert.equal(await link.textContent(), XSS);
  assert.equal(await page.locator('img').count(), 0, 'no <img> element was created');
  await link.click();
  const scope = scopeKey({ window: W, gateway_key: key.gateway_key_id });
  await rendered(page, 'cost', scope);
  assert.equal(await page.textContent('#panel-cost .chip[data-filter="gateway_key"] .chip-value'), XSS);
  await settle(page, 'cost', () => api('cost', { window: W, group_by: 'model', gateway_key: key.gateway_key_id }), (c) => checkCostTiles(page, c));
  await page.click('#tab-activity');
  await rendered(page, 'activity', scope);
  const recentNames = await page.$$eval('table.recent .key-name', (els) => els.map((e) => e.textContent));
  if (key.calls > 0) assert.ok(recentNames.includes(XSS), 'the recent calls show the name as text');
  assert.equal(await page.locator('img').count(), 0, 'no <img> element was created');
  await page.waitForTimeout(300);
  assert.deepEqual(dialogs, [], 'no dialog fired');
  console.log(`${await shot(page, 'activity-xss-key')}`);
});

test('all view state lives in the URL and survives a reload', async () => {
  const { page } = await newPage();
  const q = `tab=identity&window=7d&scope=user&sort=calls&live=0`;
  await open(page, q, 'identity', 'window=7d');
  for (let i = 0; i < 2; i++) {
    assert.equal(await page.getAttribute('#tab-identity', 'aria-selected'), 'true');
    assert.equal(await page.getAttribute('#windows [data-window="7d"]', 'aria-pressed'), 'true');
    assert.equal(await page.getAttribute('.pill[data-scope="user"]', 'aria-pressed'), 'true');
    assert.deepEqual(await visibleTiles(page), ['user']);
    assert.match(await page.textContent('.btn-sort'), /calls/);
    assert.equal(await page.getAttribute('#live', 'aria-pressed'), 'false');
    await page.reload();
    await rendered(page, 'identity', 'window=7d');
  }
  // The window picker changes the figures to that window's.
  await page.click('#tab-cost');
  await rendered(page, 'cost', scopeKey({ window: '7d' }));
  await page.click('#windows [data-window="30d"]');
  await rendered(page, 'cost', scopeKey({ window: '30d' }));
  assert.equal(new URL(page.url()).searchParams.get('window'), '30d');
  await settle(page, 'cost', () => api('cost', { window: '30d', group_by: 'model' }), (c) => checkCostTiles(page, c));
  // Tabs are a keyboard-operable tablist.
  await page.focus('#tab-cost');
  await page.keyboard.press('ArrowRight');
  await rendered(page, 'activity', scopeKey({ window: '30d' }));
  assert.equal(await page.getAttribute('#tab-activity', 'aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-activity');
  assert.equal(new URL(page.url()).searchParams.get('tab'), 'activity');
});

test('auto-refresh keeps up with new traffic with a handful of requests, and pauses', async () => {
  const { page, requests } = await newPage();
  await open(page, `window=${W}`, 'cost', scopeKey({ window: W }));
  const analytics = () => requests.filter((u) => u.includes('/analytics/'));
  const g0 = await gen(page, 'cost');
  const n0 = analytics().length;
  assert.ok(n0 <= 6, `one load issues a handful of requests (${n0})`);
  const gw = process.env.METIS_GATEWAY_URL?.replace(/\/+$/, '');
  if (isFake || (gw && process.env.METIS_GATEWAY_TOKEN)) {
    const before = await api('cost', { window: W });
    if (isFake) await fetch(`${BASE}/__fake/add`, { method: 'POST' });
    else {
      const res = await fetch(`${gw}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': process.env.METIS_GATEWAY_TOKEN },
        body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'One more call.' }] }),
      });
      assert.equal(res.status, 200, `a call through the gateway: ${res.status} ${await res.text()}`);
    }
    await page.waitForFunction((n) => document.querySelector('[data-metric="calls"]').dataset.value === String(n), before.calls + 1, { timeout: 8000 });
  }
  await rendered(page, 'cost', scopeKey({ window: W }), g0);
  const g1 = await gen(page, 'cost');
  const perRefresh = (analytics().length - n0) / (g1 - g0);
  assert.ok(perRefresh <= 6, `a refresh issues a handful of requests (${perRefresh})`);
  await page.click('#live');
  assert.equal(await page.getAttribute('#live', 'aria-pressed'), 'false');
  assert.equal(new URL(page.url()).searchParams.get('live'), '0');
  await page.waitForTimeout(500);
  const paused = analytics().length;
  await page.waitForTimeout(6000);
  assert.equal(analytics().length, paused, 'no requests while paused');
  await page.click('#live');
  await rendered(page, 'cost', scopeKey({ window: W }), await gen(page, 'cost'));
});

test('a panel link keeps a pause and a window the panel was drawn before', async () => {
  const { page } = await newPage();
  await open(page, `window=${W}`, 'cost', scopeKey({ window: W }));
  await page.click('#live');
  assert.equal(await page.getAttribute('#live', 'aria-pressed'), 'false');
  // The By model links were drawn while live: a click applies the filter
  // alone, not the state they were drawn in.
  const link = page.locator('#panel-cost table a[data-nav]').first();
  const model = await link.textContent();
  await link.click();
  const q = new URL(page.url()).searchParams;
  assert.equal(q.get('live'), '0', 'still paused after the drill-down');
  assert.equal(await page.getAttribute('#live', 'aria-pressed'), 'false');
  assert.ok(q.get('model') || q.get('provider') || q.get('workspace'), `the link ${model} filtered`);
  // A click on the window already shown adds no history entry.
  const len = await page.evaluate(() => history.length);
  await page.click(`#windows button[data-window="${W}"]`);
  assert.equal(await page.evaluate(() => history.length), len, 'the same window again is not a new entry');
});

test('day buckets read as UTC days in a browser west of UTC', async () => {
  // A UTC midnight is the evening before in Los Angeles: labelled with the
  // browser's date, today's spend showed under yesterday.
  const { page } = await newPage(undefined, undefined, { timezoneId: 'America/Los_Angeles' });
  await open(page, 'tab=cost&window=7d&live=0', 'cost', scopeKey({ window: '7d' }));
  const title = await page.$eval('#panel-cost .chart', (el) => el.closest('.card').querySelector('.card-title').textContent);
  assert.match(title, /per UTC day/, 'the chart says its days are UTC days');
  const over = await page.$('#panel-cost .chart .u-over');
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2); // the newest bucket: today, UTC
  const label = await page.$eval('#panel-cost .u-legend .u-series:first-child .u-value', (el) => el.textContent);
  const want = await page.evaluate(() => `${new Date(Math.floor(Date.now() / 864e5) * 864e5)
    .toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' })} UTC`);
  assert.equal(label, want, "the newest day bucket is labelled with today's UTC date");
});

test('a narrow window stays readable: no page-wide horizontal scroll', async () => {
  const { page } = await newPage({ width: 420, height: 860 });
  for (const [tab, key] of [['cost', scopeKey({ window: W })], ['activity', scopeKey({ window: W })], ['identity', `window=${W}`]]) {
    await open(page, `tab=${tab}&window=${W}&live=0`, tab, key);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${tab}: the page is ${overflow}px wider than the window`);
    console.log(`${await shot(page, `narrow-${tab}`)}`);
  }
});

test('the Quota column shows each team, user and key quota as the API reports it, in every state', async () => {
  // Limits and spend read as set, as the CLI prints them: never rounded to cents.
  // Shares read as they are: just over half never "50.0%", short of all
  // never "100%", above none never "0.0%".
  assert.equal(fmt.percent(0.50005), '50.1%');
  assert.equal(fmt.percent(0.9996), '99%');
  assert.equal(fmt.percent(1), '100%');
  assert.equal(fmt.percent(0.0004), '<0.1%');
  assert.equal(fmt.moneyExact(0.035), '$0.035');
  assert.equal(fmt.moneyExact(0.0349164), '$0.0349164');
  assert.equal(fmt.moneyExact(0.1 + 0.2), '$0.30');
  assert.equal(fmt.moneyExact(500), '$500.00');
  assert.equal(fmt.moneyExact(1234.5), '$1,234.50');
  // Against a real gateway (METIS_ANALYTICS_URL; run-with-gateway.sh sets caps
  // in every state with `caddy metis set-budget`) the page is compared with
  // its API; standalone, with a fake that sends team and user caps.
  let srv = null;
  let base = BASE;
  let w = W;
  if (isFake || !process.env.METIS_ANALYTICS_URL) {
    const { createServer } = await import('./fakeapi.mjs');
    srv = createServer({ quotas: true });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${srv.address().port}`;
    w = '24h';
  }
  const real = !srv;
  try {
    const { page } = await newPage(undefined, base);
    const get = async (n) => {
      const res = await fetch(`${base}/analytics/${n}?window=${w}`);
      assert.equal(res.status, 200, `GET /analytics/${n}: ${res.status}`);
      return res.json();
    };
    const data = async () => {
      const [t, u, k] = await Promise.all([get('by_team'), get('by_user'), get('by_key')]);
      return { teams: t.teams, users: u.users, keys: k.keys };
    };
    await page.goto(`${base}/dashboard/?tab=identity&window=${w}&live=0`);
    await rendered(page, 'identity', `window=${w}`);
    const d = await settle(page, 'identity', data, async (x) => {
      for (const kind of ['team', 'user', 'key']) {
        const { list, name, untagged } = byIdent[kind];
        expectQuotaCells(kind, fmt.sortRows(list(x) || [], 'cost', name, untagged), await quotaCells(page, kind), name);
      }
    });
    const shown = await page.$$eval('table.ident td.quota[data-state]', (tds) => [...new Set(tds.map((td) => td.dataset.state))].sort());
    if (real) {
      for (const kind of ['team', 'user', 'key']) assert.ok((byIdent[kind].list(d) || []).some((x) => x.quota), `the API reports a ${kind} quota`);
      assert.deepEqual(shown, ['hard', 'ok', 'soft'], 'the page shows quotas in all three states');
      for (const st of ['ok', 'soft', 'hard']) {
        assert.ok(await page.locator(`td.quota[data-state="${st}"] .badge-quota-${st}`).first().isVisible(), `a visible ${st} badge`);
      }
    } else {
      for (const kind of ['team', 'user']) assert.ok((byIdent[kind].list(d) || []).some((x) => x.quota), `the fake sends ${kind} caps`);
      assert.ok(shown.length > 0, 'the page shows a quota state');
    }
    console.log(await shot(page, real ? 'identity-quotas-real' : 'identity-with-quotas'));
  } finally {
    if (srv) srv.close();
  }
});

// The charts grid the window on the answer's "to", the server's clock: a
// browser 2 minutes behind drew a bar before the window the API answered,
// as 0 ("no traffic") for an hour never asked for (review 28T).
test('the chart\'s buckets are the answer\'s, whatever the browser\'s clock', () => {
  const to = '2026-11-29T14:01:00.123456Z'; // window=24h's to
  const gap = '2026-11-29T02:00:00.000Z'; // a bucket the answer left out: drawn as 0
  const pts = [];
  for (let t = Date.parse('2026-11-28T14:00:00Z'); t < Date.parse(to); t += 3600e3) {
    if (new Date(t).toISOString() !== gap) pts.push({ t: new Date(t).toISOString().replace('.000', ''), calls: 5 });
  }
  const realNow = Date.now;
  for (const lag of [-90 * 60e3, -2 * 60e3, 0, 2 * 60e3]) {
    Date.now = () => Date.parse(to) + lag;
    try {
      const [xs, calls] = fillSeries(pts, 'hour', '24h', ['calls'], to);
      const zeros = xs.filter((_, i) => calls[i] === 0).map((x) => new Date(x * 1000).toISOString());
      assert.deepEqual(zeros, [gap], `browser clock ${lag / 60e3} min off: the bars drawn as 0`);
      assert.equal(xs.length, 25, `browser clock ${lag / 60e3} min off: ${xs.length} bars for 25 hours`);
    } finally {
      Date.now = realNow;
    }
  }
  // A window ending on a bucket's edge has no bar for the bucket it excludes.
  const [xs] = fillSeries(pts.slice(0, 23), 'hour', '24h', ['calls'], '2026-11-29T14:00:00Z');
  assert.equal(new Date(xs[0] * 1000).toISOString(), '2026-11-28T14:00:00.000Z');
  assert.equal(new Date(xs[xs.length - 1] * 1000).toISOString(), '2026-11-29T13:00:00.000Z');
  assert.equal(xs.length, 24);
});
