// Cost tab: totals for the window, spend over time, breakdowns.
import { h, replace } from './dom.js';
import { get, scopeParams } from './api.js';
import { money, int, tokens, groupLabel } from './format.js';
import { tile, card, costCell, shareBar, table, emptyRow } from './ui.js';
import { BarChart, bucketLabel, fillSeries } from './chart.js';

export function costView(panel, app) {
  const bar = h('div', { class: 'filter-slot' });
  const tiles = h('div', { class: 'tiles', dataset: { tiles: 'cost' } });
  const chartBox = h('div', { class: 'chart' });
  const chartCard = card('Spend over time', chartBox);
  const models = h('div');
  const providers = h('div');
  const workspaces = h('div');
  panel.append(bar, tiles, chartCard,
    h('div', { class: 'grid-breakdown' },
      h('div', { class: 'span-2' }, card('By model', models)),
      card('By provider', providers),
      card('By workspace', workspaces)));
  let chart = null;

  function breakdown(slot, resp, kind, filterParam, state) {
    const groups = [...(resp.groups || [])].sort((a, b) => (b.cost_usd || 0) - (a.cost_usd || 0) || (b.calls || 0) - (a.calls || 0));
    const total = resp.total_cost_usd || 0;
    const full = kind === 'model';
    const head = [
      { label: kind[0].toUpperCase() + kind.slice(1) },
      { label: 'Cost', num: true },
      { label: 'Share', cls: 'share' },
      { label: 'Calls', num: true },
      ...(full ? [{ label: 'Input', num: true }, { label: 'Output', num: true }, { label: 'Cache read', num: true }, { label: 'Savings', num: true }] : []),
    ];
    const tbody = h('tbody');
    if (!groups.length) tbody.append(emptyRow(head.length, 'No calls in this window.'));
    for (const g of groups) {
      const label = groupLabel(g);
      let name;
      if (filterParam && g.key && !state[filterParam]) {
        name = app.navLink({ [filterParam]: g.key }, { dataset: { fk: `${kind}-${g.key}` }, title: `Show only ${kind} ${label}` }, label);
      } else name = h('span', null, label);
      tbody.append(h('tr', { dataset: { key: g.key ?? '' } },
        h('td', { class: 'name' }, name, g.errors ? h('span', { class: 'badge badge-err', title: `${int(g.errors)} error(s)` }, `${int(g.errors)} err`) : null),
        costCell(g.cost_usd, g.calls, g.unpriced_calls || 0),
        h('td', { class: 'share' }, shareBar(total > 0 ? (g.cost_usd || 0) / total : 0)),
        h('td', { class: 'num calls', dataset: { value: String(g.calls) } }, int(g.calls)),
        full ? [
          h('td', { class: 'num', title: int(g.input_tokens) }, tokens(g.input_tokens)),
          h('td', { class: 'num', title: int(g.output_tokens) }, tokens(g.output_tokens)),
          h('td', { class: 'num', title: int(g.cache_read_input_tokens) }, tokens(g.cache_read_input_tokens)),
          h('td', { class: 'num' }, g.cache_savings_usd ? money(g.cache_savings_usd) : '—'),
        ] : null));
    }
    replace(slot, table(`breakdown breakdown-${kind}`, head, tbody, `Spend by ${kind}`));
  }

  async function refresh(state, signal) {
    const p = scopeParams(state);
    const needKeyName = state.gateway_key && !app.keyNames.has(state.gateway_key);
    const [m, pr, ws, act, keys] = await Promise.all([
      get('cost', { ...p, group_by: 'model' }, signal),
      get('cost', { ...p, group_by: 'provider' }, signal),
      get('cost', { ...p, group_by: 'workspace' }, signal),
      get('activity', { ...p, limit: 1 }, signal),
      needKeyName ? get('cost', { ...p, group_by: 'key' }, signal) : null,
    ]);
    if (keys) for (const g of keys.groups || []) if (g.name) app.keyNames.set(g.key, g.name);

    replace(bar, app.filterBar(state));
    const cacheTok = (m.cache_read_input_tokens || 0) + (m.cache_creation_input_tokens || 0);
    replace(tiles,
      tile('Total spend', 'total_cost_usd', m.total_cost_usd, money(m.total_cost_usd),
        m.unpriced_calls ? `excludes ${int(m.unpriced_calls)} unpriced call${m.unpriced_calls === 1 ? '' : 's'}` : `in the last ${state.window}`),
      tile('Calls', 'calls', m.calls, int(m.calls),
        [`${int(m.errors || 0)} error${m.errors === 1 ? '' : 's'}`, m.estimated_calls ? `${int(m.estimated_calls)} with estimated usage` : null,
          m.rejected ? `${int(m.rejected)} refused${m.rejected_by_reason && m.rejected_by_reason.budget ? ` (${int(m.rejected_by_reason.budget)} over budget)` : ''}` : null,
        ].filter(Boolean).join(' · '),
        { subTone: m.errors ? 'warn' : null }),
      tile('Input tokens', 'input_tokens', m.input_tokens, tokens(m.input_tokens),
        `${tokens(m.cache_read_input_tokens || 0)} cache read · ${tokens(m.cache_creation_input_tokens || 0)} write`, { title: int(m.input_tokens) }),
      tile('Output tokens', 'output_tokens', m.output_tokens, tokens(m.output_tokens),
        m.reasoning_tokens ? `reasoning ${tokens(m.reasoning_tokens)}` : 'completion', { title: int(m.output_tokens) }),
      tile('Cache savings', 'cache_savings_usd', m.cache_savings_usd, money(m.cache_savings_usd || 0),
        cacheTok ? 'vs. uncached input price' : 'no cached input', { tone: m.cache_savings_usd ? 'good' : null }),
      tile('Unpriced calls', 'unpriced_calls', m.unpriced_calls, int(m.unpriced_calls || 0),
        m.unpriced_calls ? 'no price known for the model' : 'every call priced', { tone: m.unpriced_calls ? 'warn' : null }),
    );

    const data = fillSeries(act.series || [], act.bucket, state.window, ['cost_usd'], act.to);
    if (!chart) chart = new BarChart(chartBox, { series: [{ label: 'Spend', color: '--chart-1', fmt: money }], yFmt: money, bucket: act.bucket, label: 'Spend over time' });
    chart.setData(data, act.bucket);
    chartCard.querySelector('.card-title').textContent = `Spend over time · per ${bucketLabel(act.bucket)}`;

    breakdown(models, m, 'model', 'model', state);
    breakdown(providers, pr, 'provider', null, state);
    breakdown(workspaces, ws, 'workspace', 'workspace', state);
  }

  return { refresh };
}
