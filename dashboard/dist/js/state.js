// All view state lives in the query string so a view can be shared and reloaded:
//   ?tab=cost|activity|identity &window=1h|24h|7d|30d
//   &gateway_key=&user=&team=&workspace=&model=      (Cost/Activity filters)
//   &scope=all|team|user|key &sort=cost|calls &open=<team>… (Spend by identity)
//   &live=0 (auto-refresh paused)
import { FILTERS } from './api.js';

export const TABS = ['cost', 'activity', 'identity'];
export const WINDOWS = ['1h', '24h', '7d', '30d'];
export const SCOPES = ['all', 'team', 'user', 'key'];
export const SORTS = ['cost', 'calls'];

const DEFAULTS = { tab: 'cost', window: '24h', scope: 'all', sort: 'cost', live: true };

export function read(search = location.search) {
  const q = new URLSearchParams(search);
  const pick = (k, allowed) => (allowed.includes(q.get(k)) ? q.get(k) : DEFAULTS[k]);
  const s = {
    tab: pick('tab', TABS),
    window: pick('window', WINDOWS),
    scope: pick('scope', SCOPES),
    sort: pick('sort', SORTS),
    live: q.get('live') !== '0',
    open: q.getAll('open'),
  };
  for (const f of FILTERS) s[f] = q.get(f) || '';
  return s;
}

export function toSearch(s) {
  const q = new URLSearchParams();
  if (s.tab !== DEFAULTS.tab) q.set('tab', s.tab);
  if (s.window !== DEFAULTS.window) q.set('window', s.window);
  for (const f of FILTERS) if (s[f]) q.set(f, s[f]);
  if (s.scope !== DEFAULTS.scope) q.set('scope', s.scope);
  if (s.sort !== DEFAULTS.sort) q.set('sort', s.sort);
  for (const t of s.open || []) q.append('open', t);
  if (!s.live) q.set('live', '0');
  const str = q.toString();
  return str ? `?${str}` : location.pathname;
}

/** The href of the state `patch` applied to `s` (for real, shareable links). */
export function href(s, patch) {
  return toSearch({ ...s, ...patch });
}

/** A drill-down to one identity: replaces any filter, opens Cost. Spend by
 *  identity reads the window alone, so a workspace or model filter left on
 *  would show other figures than the row clicked. */
export function drill(kind, value) {
  return { tab: 'cost', gateway_key: '', user: '', team: '', workspace: '', model: '', [kind]: value };
}
