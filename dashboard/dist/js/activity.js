// Activity tab: calls and errors over time, and the recent calls as they land.
import { h, replace } from './dom.js';
import { get, scopeParams } from './api.js';
import { money, int, tokens, ms, ago } from './format.js';
import { tile, card, table, emptyRow } from './ui.js';
import { BarChart, bucketLabel, fillSeries } from './chart.js';

const RECENT_LIMIT = 50;

export function activityView(panel, app) {
  const bar = h('div', { class: 'filter-slot' });
  const tiles = h('div', { class: 'tiles', dataset: { tiles: 'activity' } });
  const chartBox = h('div', { class: 'chart' });
  const chartCard = card('Calls and errors over time', chartBox);
  const recent = h('div');
  const recentCard = card('Recent calls', recent);
  panel.append(bar, tiles, chartCard, recentCard);
  let chart = null;
  let seen = null; // ids shown on the previous refresh, to mark new rows
  let lastScope = '';

  function row(c, isNew) {
    // status may be an HTTP code or a word; error_class names a failure.
    const failed = !!c.error_class || (typeof c.status === 'number' && c.status >= 400) ||
      (typeof c.status === 'string' && /^(error|fail|cancel|timeout)/i.test(c.status));
    const status = !failed ? h('span', { class: 'badge badge-ok' }, String(c.status ?? 'ok'))
      : h('span', { class: 'badge badge-err', title: c.error_class || '' }, [c.status, c.error_class].filter((x) => x !== null && x !== undefined && x !== '').join(' '));
    const asked = c.requested_model && c.requested_model !== c.model ? `asked ${c.requested_model}` : null;
    const modelSub = [c.provider, asked].filter(Boolean).join(' · ');
    const who = [c.user, c.team].filter(Boolean).join(' · ');
    const cache = (c.cache_read_input_tokens || 0) + (c.cache_creation_input_tokens || 0);
    const unpriced = c.cost_usd === null || c.cost_usd === undefined || c.priced === false;
    return h('tr', { class: isNew ? 'new' : null, dataset: { id: c.id } },
      h('td', { class: 'time', title: new Date(c.time).toLocaleString() }, ago(c.time)),
      h('td', { class: 'name' }, h('span', { class: 'key-name', title: c.gateway_key_id || '' }, c.key_name || c.gateway_key_id || '—'), who ? h('span', { class: 'sub' }, who) : null),
      h('td', null, h('span', { class: 'nw' }, c.model || c.requested_model || '—'), modelSub ? h('span', { class: 'sub' }, modelSub) : null),
      h('td', { class: 'shape-cell' }, h('span', { class: `shape shape-${c.inbound_shape}` }, c.inbound_shape || '—'), c.stream ? h('span', { class: 'tag', title: 'streamed' }, 'stream') : null),
      h('td', { class: 'num', title: `in ${int(c.input_tokens)} · out ${int(c.output_tokens)} · cache read ${int(c.cache_read_input_tokens || 0)} · cache write ${int(c.cache_creation_input_tokens || 0)}` },
        `${tokens(c.input_tokens)} / ${tokens(c.output_tokens)}`, cache ? h('span', { class: 'sub' }, `cache ${tokens(cache)}`) : null),
      h('td', { class: 'num cost', dataset: { value: unpriced ? 'null' : String(c.cost_usd) } },
        unpriced ? h('span', { class: 'badge badge-unpriced' }, 'unpriced') : money(c.cost_usd),
        c.usage_source === 'estimated' ? h('span', { class: 'sub', title: 'usage estimated: the provider reported none' }, 'estimated') : null),
      h('td', { class: 'num' }, ms(c.latency_ms), c.ttft_ms ? h('span', { class: 'sub' }, `ttft ${ms(c.ttft_ms)}`) : null),
      h('td', null, status));
  }

  async function refresh(state, signal) {
    const p = scopeParams(state);
    const act = await get('activity', { ...p, limit: RECENT_LIMIT }, signal);
    const series = act.series || [];
    let calls = 0, errors = 0, cost = 0, priced = false, inTok = 0, outTok = 0;
    for (const s of series) {
      calls += s.calls || 0;
      errors += s.errors || 0;
      // A bucket's cost_usd is null when none of its calls was priced.
      if (s.cost_usd !== null && s.cost_usd !== undefined) {
        cost += s.cost_usd;
        if (s.calls) priced = true;
      }
      inTok += s.input_tokens || 0;
      outTok += s.output_tokens || 0;
    }
    // No call priced: the spend is unknown, never $0.
    const spend = calls > 0 && !priced ? null : cost;
    for (const c of act.recent || []) if (c.gateway_key_id && c.key_name) app.keyNames.set(c.gateway_key_id, c.key_name);

    replace(bar, app.filterBar(state));
    replace(tiles,
      tile('Calls', 'act_calls', calls, int(calls), `in the last ${state.window}`),
      tile('Errors', 'act_errors', errors, int(errors), calls ? `${((errors / calls) * 100).toFixed(1)}% of calls` : 'no calls', { tone: errors ? 'warn' : null }),
      tile('Spend', 'act_cost', spend, money(spend), spend === null ? 'no call was priced' : 'priced calls',
        { tone: spend === null ? 'warn' : null }),
      tile('Input tokens', 'act_input_tokens', inTok, tokens(inTok), null, { title: int(inTok) }),
      tile('Output tokens', 'act_output_tokens', outTok, tokens(outTok), null, { title: int(outTok) }),
    );

    const data = fillSeries(series, act.bucket, state.window, ['calls', 'errors'], act.to);
    if (!chart) {
      chart = new BarChart(chartBox, {
        series: [{ label: 'Calls', color: '--chart-2', fmt: int }, { label: 'Errors', color: '--chart-err', fmt: int }],
        yFmt: int, integer: true, bucket: act.bucket, label: 'Calls and errors over time',
      });
    }
    chart.setData(data, act.bucket);
    chartCard.querySelector('.card-title').textContent = `Calls and errors · per ${bucketLabel(act.bucket)}`;

    const scope = new URLSearchParams(p).toString();
    if (scope !== lastScope) seen = null;
    lastScope = scope;
    const rows = act.recent || [];
    const tbody = h('tbody');
    if (!rows.length) tbody.append(emptyRow(8, 'No calls in this window yet.'));
    for (const c of rows) tbody.append(row(c, seen !== null && !seen.has(c.id)));
    seen = new Set(rows.map((c) => c.id));
    recentCard.querySelector('.card-title').textContent = `Recent calls · latest ${rows.length}`;
    replace(recent, table('recent', [
      { label: 'When' }, { label: 'Key' }, { label: 'Model' }, { label: 'Shape' },
      { label: 'Tokens in / out', num: true }, { label: 'Cost', num: true }, { label: 'Latency', num: true }, { label: 'Status' },
    ], tbody, 'Recent calls, newest first'));
  }

  return { refresh };
}
