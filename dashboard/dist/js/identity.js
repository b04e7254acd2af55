// Spend by identity: per-team, per-user and per-key rollups with scope pills,
// sort, inline team expansion and the "more than half of spend" callouts.
import { h, replace } from './dom.js';
import { get } from './api.js';
import { money, int, ago, percent, shapeList, topShare, sortRows, UNTAGGED } from './format.js';
import { card, costCell, quotaCell, shareBar, table, emptyRow } from './ui.js';
import { SCOPES, drill } from './state.js';

/** gk_01JALICELAPTOP0000 → gk_01JALICE… (the full id is in the title). */
const shortId = (id) => (id && id.length > 14 ? `${id.slice(0, 12)}…` : id || '');

const SCOPE_LABEL = { all: 'All', team: 'Per-team', user: 'Per-user', key: 'Per-key' };
const CALLOUT = { team: ['TOP TEAM', 'team'], user: ['TOP DEVELOPER', 'user'], key: ['TOP KEY', 'key'] };

export function identityView(panel, app) {
  const pills = h('div', { class: 'pills', role: 'group', 'aria-label': 'Scope' });
  const sortBtn = h('button', { type: 'button', class: 'btn btn-sort', dataset: { fk: 'sort' } });
  const teamSlot = h('div');
  const userSlot = h('div');
  const keySlot = h('div');
  const tiles = {
    team: h('div', { class: 'id-tile', dataset: { tile: 'team' } }, teamSlot),
    user: h('div', { class: 'id-tile', dataset: { tile: 'user' } }, userSlot),
    key: h('div', { class: 'id-tile', dataset: { tile: 'key' } }, keySlot),
  };
  panel.append(h('div', { class: 'toolbar' }, pills, h('span', { class: 'spacer' }), sortBtn), tiles.team, tiles.user, tiles.key);
  let data = null;
  let state = null;

  sortBtn.addEventListener('click', () => app.update({ sort: state.sort === 'cost' ? 'calls' : 'cost' }, { push: false, refetch: false }));

  function callout(kind, rows) {
    const top = topShare(rows);
    if (!top) return null;
    const [label, noun] = CALLOUT[kind];
    return h('p', { class: 'callout', role: 'note', dataset: { callout: kind } },
      h('span', { class: 'callout-icon', 'aria-hidden': 'true' }, '⚠'), ' ',
      h('span', { class: 'callout-label' }, label), ' ',
      h('strong', { class: 'callout-name' }, top.name), ' ',
      h('span', { class: 'callout-pct' }, percent(top.share)),
      ` of ${noun} spend in this window`);
  }

  function sortHead(label, key, cls) {
    return { label, num: true, sort: { key, active: state.sort === key, onClick: () => app.update({ sort: key }, { push: false, refetch: false }) } };
  }

  function filterLink(kind, value, label) {
    return app.navLink(drill(kind, value), {
      class: 'btn btn-small btn-filter', dataset: { fk: `filter-${kind}-${value}` },
      'aria-label': `Filter Cost and Activity to ${kind} ${label}`,
    }, 'Filter');
  }

  function teams() {
    const rows = sortRows(data.teams || [], state.sort, (t) => t.team, (t) => t.team === UNTAGGED);
    const max = Math.max(0, ...rows.map((t) => t.cost_usd || 0));
    const open = new Set(state.open);
    const tbody = h('tbody');
    if (!rows.length) tbody.append(emptyRow(7, 'No team spend in this window.'));
    rows.forEach((t, i) => {
      const isOpen = open.has(t.team);
      const subId = `team-users-${i}`;
      const untagged = t.team === UNTAGGED;
      const toggle = () => {
        const next = new Set(state.open);
        if (next.has(t.team)) next.delete(t.team); else next.add(t.team);
        app.update({ open: [...next] }, { push: false, refetch: false });
      };
      const tr = h('tr', { class: `team-row${isOpen ? ' open' : ''}${untagged ? ' untagged' : ''}`, dataset: { team: t.team } },
        h('td', { class: 'name' }, h('button', {
          type: 'button', class: 'expander', 'aria-expanded': isOpen ? 'true' : 'false', 'aria-controls': subId,
          dataset: { fk: `team-${t.team}` }, title: isOpen ? 'Hide users' : 'Show users', on: { click: (e) => { e.stopPropagation(); toggle(); } },
        }, h('span', { class: 'caret', 'aria-hidden': 'true' }, isOpen ? '▾' : '▸'), ' ', h('span', { class: 'team-name' }, t.team))),
        costCell(t.cost_usd, t.calls, t.unpriced_calls || 0),
        h('td', { class: 'share' }, shareBar(max > 0 ? (t.cost_usd || 0) / max : 0)),
        h('td', { class: 'num calls', dataset: { value: String(t.calls) } }, int(t.calls)),
        h('td', { class: 'num' }, int(t.users ?? (t.by_user || []).length)),
        quotaCell(t.quota),
        h('td', { class: 'act' }, untagged ? h('span', { class: 'muted' }, '—') : filterLink('team', t.team, t.team)));
      tr.addEventListener('click', (e) => { if (!e.target.closest('a,button')) toggle(); });
      tbody.append(tr);
      if (isOpen) {
        const users = sortRows(t.by_user || [], state.sort, (u) => u.user, (u) => u.user === UNTAGGED);
        const sub = h('tbody');
        if (!users.length) sub.append(emptyRow(3, 'No users.'));
        for (const u of users) {
          // The row's figures are the user's calls in this team: so is the drill-down.
          const name = u.user === UNTAGGED ? h('span', { class: 'muted' }, u.user)
            : app.navLink({ ...drill('user', u.user), team: t.team }, { class: 'user-link', dataset: { fk: `team-${t.team}-user-${u.user}` }, title: `Show Cost and Activity for ${u.user}` }, u.user);
          sub.append(h('tr', { dataset: { user: u.user } }, h('td', { class: 'name' }, name), costCell(u.cost_usd, u.calls, u.unpriced_calls || 0),
            h('td', { class: 'num calls', dataset: { value: String(u.calls) } }, int(u.calls))));
        }
        tbody.append(h('tr', { class: 'sub-row', id: subId, dataset: { usersOf: t.team } },
          h('td', { colspan: 7 }, h('table', { class: 'subtable' },
            h('caption', { class: 'sr-only' }, `Users of team ${t.team}`),
            h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'User'), h('th', { scope: 'col', class: 'num' }, 'Cost'), h('th', { scope: 'col', class: 'num' }, 'Calls'))),
            sub))));
      }
    });
    replace(teamSlot,
      callout('team', rows.map((t) => ({ name: t.team, cost: t.cost_usd, untagged: t.team === UNTAGGED }))),
      card('Per-team spend', table('ident ident-team', [
        { label: 'Team' }, sortHead('Cost', 'cost'), { label: '', cls: 'share' }, sortHead('Calls', 'calls'), { label: 'Users', num: true }, { label: 'Quota' }, { label: 'Filter' },
      ], tbody, 'Spend per team')));
  }

  function users() {
    const rows = sortRows(data.users || [], state.sort, (u) => u.user, (u) => u.user === UNTAGGED);
    const max = Math.max(0, ...rows.map((u) => u.cost_usd || 0));
    const tbody = h('tbody');
    if (!rows.length) tbody.append(emptyRow(7, 'No user spend in this window.'));
    for (const u of rows) {
      const untagged = u.user === UNTAGGED;
      tbody.append(h('tr', { class: untagged ? 'untagged' : null, dataset: { user: u.user } },
        h('td', { class: 'name' }, h('span', { class: 'user-name' }, u.user)),
        costCell(u.cost_usd, u.calls, u.unpriced_calls || 0),
        h('td', { class: 'share' }, shareBar(max > 0 ? (u.cost_usd || 0) / max : 0)),
        h('td', { class: 'num calls', dataset: { value: String(u.calls) } }, int(u.calls)),
        h('td', { class: 'num' }, u.keys === undefined || u.keys === null ? '—' : int(u.keys)),
        quotaCell(u.quota),
        h('td', { class: 'act' }, untagged ? h('span', { class: 'muted' }, '—') : filterLink('user', u.user, u.user))));
    }
    replace(userSlot,
      callout('user', rows.map((u) => ({ name: u.user, cost: u.cost_usd, untagged: u.user === UNTAGGED }))),
      card('Per-user spend', table('ident ident-user', [
        { label: 'User' }, sortHead('Cost', 'cost'), { label: '', cls: 'share' }, sortHead('Calls', 'calls'), { label: 'Keys', num: true }, { label: 'Quota' }, { label: 'Filter' },
      ], tbody, 'Spend per user')));
  }

  function keys() {
    const rows = sortRows(data.keys || [], state.sort, (k) => k.name || k.gateway_key_id, () => false);
    const max = Math.max(0, ...rows.map((k) => k.cost_usd || 0));
    const tbody = h('tbody');
    if (!rows.length) tbody.append(emptyRow(7, 'No gateway keys.'));
    const now = Date.now();
    for (const k of rows) {
      const label = k.name || k.gateway_key_id;
      const who = [k.user, k.team].filter(Boolean).join(' · ');
      tbody.append(h('tr', { dataset: { key: k.gateway_key_id } },
        h('td', { class: 'name' },
          app.navLink(drill('gateway_key', k.gateway_key_id), { class: 'key-link', dataset: { fk: `key-${k.gateway_key_id}` }, title: `Show Cost and Activity for key ${label}` }, label),
          h('span', { class: 'sub' }, h('span', { class: 'mono', title: k.gateway_key_id }, shortId(k.gateway_key_id)), who ? ` · ${who}` : '')),
        costCell(k.cost_usd, k.calls, k.unpriced_calls || 0),
        h('td', { class: 'share' }, shareBar(max > 0 ? (k.cost_usd || 0) / max : 0)),
        h('td', { class: 'num calls', dataset: { value: String(k.calls) } }, int(k.calls)),
        h('td', { class: 'last', title: k.last_call_at ? new Date(k.last_call_at).toLocaleString() : 'never' }, ago(k.last_call_at, now)),
        h('td', { class: 'shapes' }, shapeList(k.inbound_shapes).map(([s, n], i) => [i ? ' ' : null, h('span', { class: `shape shape-${s}` }, s, ' ', h('b', null, int(n)))])),
        quotaCell(k.quota)));
    }
    replace(keySlot,
      callout('key', rows.map((k) => ({ name: k.name || k.gateway_key_id, cost: k.cost_usd }))),
      card('Per-key spend', table('ident ident-key', [
        { label: 'Gateway key' }, sortHead('Cost', 'cost'), { label: '', cls: 'share' }, sortHead('Calls', 'calls'), { label: 'Last call' }, { label: 'Inbound shapes' }, { label: 'Quota' },
      ], tbody, 'Spend per gateway key')));
  }

  function render(s) {
    state = s;
    replace(pills, SCOPES.map((sc) => h('button', {
      type: 'button', class: 'pill', 'aria-pressed': s.scope === sc ? 'true' : 'false', dataset: { scope: sc, fk: `scope-${sc}` },
      on: { click: () => app.update({ scope: sc }, { push: false, refetch: false }) },
    }, SCOPE_LABEL[sc])));
    sortBtn.textContent = `Sort: ${s.sort} ▼`;
    sortBtn.setAttribute('aria-label', `Sorted by ${s.sort}; switch to ${s.sort === 'cost' ? 'calls' : 'cost'}`);
    for (const [k, el] of Object.entries(tiles)) el.hidden = !(s.scope === 'all' || s.scope === k);
    if (!data) return;
    teams();
    users();
    keys();
  }

  async function refresh(s, signal) {
    const p = { window: s.window };
    const [t, u, k] = await Promise.all([get('by_team', p, signal), get('by_user', p, signal), get('by_key', p, signal)]);
    for (const key of k.keys || []) if (key.name) app.keyNames.set(key.gateway_key_id, key.name);
    data = { teams: t.teams, users: u.users, keys: k.keys };
    render(s);
  }

  return { refresh, render };
}
