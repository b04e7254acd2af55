// Shared pieces of the three views.
import { h } from './dom.js';
import { money, moneyExact, int } from './format.js';
import { FILTERS } from './api.js';

/** A KPI tile. The value element carries data-metric and the raw data-value. */
export function tile(label, metric, value, text, sub, opts = {}) {
  return h('div', { class: `tile${opts.tone ? ` tone-${opts.tone}` : ''}` },
    h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value', dataset: { metric, value: value === null || value === undefined ? 'null' : String(value) }, title: opts.title }, text),
    sub ? h('div', { class: `tile-sub${opts.subTone ? ` tone-${opts.subTone}` : ''}`, title: sub }, sub) : null);
}

/** Cost of a row: "unpriced" if none of its calls was priced, else money with a "+N unpriced" mark. */
export function costCell(cost, calls, unpriced) {
  const allUnpriced = unpriced > 0 && unpriced >= calls && !cost;
  const td = h('td', { class: 'num cost', dataset: { value: cost === null || cost === undefined ? 'null' : String(cost) } });
  if (cost === null || cost === undefined || allUnpriced) {
    td.append(h('span', { class: 'badge badge-unpriced', title: 'No price is known for these calls' }, 'unpriced'));
    return td;
  }
  td.append(h('span', { class: 'money' }, money(cost)));
  if (unpriced > 0) td.append(' ', h('span', { class: 'badge badge-unpriced', title: `${int(unpriced)} call(s) without a price are not included` }, `+${int(unpriced)} unpriced`));
  return td;
}

/** A thin horizontal bar showing share of the largest value. */
export function shareBar(share) {
  const pct = Math.max(0, Math.min(1, share || 0)) * 100;
  return h('span', { class: 'bar', 'aria-hidden': 'true' }, h('span', { class: 'bar-fill', style: { width: `${pct.toFixed(1)}%` } }));
}

const QUOTA_STATE = { ok: 'ok', soft: 'soft cap', hard: 'hard cap' };

/** Quota: null → "—"; {spent, hard, soft, state, …} → "$spent / $hard" with a state badge. */
export function quotaCell(q) {
  const td = h('td', { class: 'quota' });
  if (!q) {
    td.append(h('span', { class: 'muted', title: 'No spend cap set' }, '—'));
    return td;
  }
  const limit = q.hard ?? q.soft;
  const state = QUOTA_STATE[q.state] ? q.state : 'ok';
  const details = [
    q.window ? `window ${q.window}` : null,
    q.soft !== null && q.soft !== undefined ? `soft ${moneyExact(q.soft)}` : null,
    q.hard !== null && q.hard !== undefined ? `hard ${moneyExact(q.hard)}` : null,
    q.reserved ? `reserved ${moneyExact(q.reserved)}` : null,
    q.resets_at ? `resets ${new Date(q.resets_at).toLocaleString()}` : null,
  ].filter(Boolean).join(' · ');
  const share = limit > 0 ? Math.min(1, (q.spent || 0) / limit) : 0;
  td.title = details;
  td.dataset.state = state;
  td.append(
    h('span', { class: 'quota-fig' }, `${moneyExact(q.spent ?? 0)} / ${limit === null || limit === undefined ? '∞' : moneyExact(limit)}`),
    ' ',
    h('span', { class: `badge badge-quota-${state}` }, QUOTA_STATE[state]),
    h('span', { class: `bar bar-quota-${state}`, 'aria-hidden': 'true' }, h('span', { class: 'bar-fill', style: { width: `${(share * 100).toFixed(1)}%` } })),
  );
  return td;
}

const FILTER_LABEL = { gateway_key: 'key', user: 'user', team: 'team', workspace: 'workspace', model: 'model' };

/**
 * The chips naming the filters in scope at the top of Cost and Activity.
 * names: {gateway_key id → key name} to show a key's name.
 */
export function filterBar(state, { onClear, navLink, keyNames }) {
  const active = FILTERS.filter((f) => state[f]);
  if (!active.length) {
    return h('p', { class: 'filterbar filterbar-empty', dataset: { empty: '' } },
      h('span', { class: 'muted' }, 'All identities — pick a team, user or key under '),
      navLink({ tab: 'identity' }, {}, 'Spend by identity'),
      h('span', { class: 'muted' }, ' to drill down.'));
  }
  return h('div', { class: 'filterbar', role: 'group', 'aria-label': 'Filters in scope' },
    h('span', { class: 'filterbar-label' }, 'Filtered to'),
    active.map((f) => {
      const shown = f === 'gateway_key' && keyNames && keyNames.get(state[f]) ? keyNames.get(state[f]) : state[f];
      return h('span', { class: 'chip', dataset: { filter: f } },
        h('span', { class: 'chip-kind' }, FILTER_LABEL[f]),
        h('span', { class: 'chip-value', title: state[f] }, shown),
        h('button', {
          type: 'button', class: 'chip-clear', 'aria-label': `Clear ${FILTER_LABEL[f]} filter ${shown}`, title: 'Clear filter',
          dataset: { fk: `clear-${f}` }, on: { click: () => onClear(f) },
        }, '✕'));
    }));
}

/** A card with a small-caps title. */
export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', { class: 'card-title' }, title) : null, ...children);
}

export function emptyRow(cols, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan: cols }, text));
}

/** A <table> with header cells; head: [{label, num?, sort?: {key, state, onClick}}]. */
export function table(cls, head, tbody, caption) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: cls },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', null, h('tr', null, head.map((c) => {
        const th = h('th', { scope: 'col', class: [c.num ? 'num' : '', c.cls || ''].join(' ').trim() || null });
        if (c.sort) {
          th.setAttribute('aria-sort', c.sort.active ? 'descending' : 'none');
          th.append(h('button', { type: 'button', class: 'th-sort', dataset: { fk: `sort-${c.sort.key}-${cls}` }, on: { click: c.sort.onClick }, title: `Sort by ${c.label.toLowerCase()}` },
            c.label, c.sort.active ? ' ▼' : ''));
        } else th.append(c.label);
        return th;
      }))),
      tbody));
}
