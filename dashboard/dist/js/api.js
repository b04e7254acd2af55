// The only network the page does: GET JSON from /analytics/* on its own origin.

export const FILTERS = ['gateway_key', 'user', 'team', 'workspace', 'model'];

export class ApiError extends Error {
  constructor(path, status, detail) {
    super(`${path}: ${status}${detail ? ` — ${detail}` : ''}`);
    this.status = status;
  }
}

/** GET /analytics/{name}?params (null/empty params dropped). */
export async function get(name, params, signal) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  }
  const path = `/analytics/${name}`;
  let res;
  try {
    res = await fetch(`${path}?${q}`, { signal, headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(path, 'unreachable', e.message);
  }
  if (!res.ok) {
    let detail = '';
    try {
      detail = (await res.text()).slice(0, 200);
    } catch { /* ignore */ }
    throw new ApiError(path, `${res.status} ${res.statusText}`.trim(), detail.trim());
  }
  return res.json();
}

/** window + the filters that are set, in a fixed order. */
export function scopeParams(state) {
  const p = { window: state.window };
  for (const f of FILTERS) if (state[f]) p[f] = state[f];
  return p;
}

/** The canonical query of a scope, e.g. "window=24h&team=eng" (tests wait on it). */
export function scopeKey(state) {
  return new URLSearchParams(scopeParams(state)).toString();
}
