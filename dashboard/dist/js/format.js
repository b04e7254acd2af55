// Pure formatting helpers (no DOM). The browser tests import this module too,
// so the figures they expect are spelled exactly as the page spells them.

const usd2 = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const usdSmall = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumSignificantDigits: 2 });
const usdExact = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 8 });
const ints = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

/** Money in USD. null/undefined means the call was not priced: never "$0". */
export function money(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'unpriced';
  const a = Math.abs(v);
  if (a === 0) return '$0.00';
  if (a < 0.01) return usdSmall.format(v);
  return usd2.format(v);
}

/** A budget's limit or spend as the operator set it and the CLI prints it:
 *  to 1e-8 of a dollar, never rounded to cents ($0.035, not $0.04). */
export function moneyExact(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return usdExact.format(v);
}

/** Whole numbers with grouping: 1,234. */
export function int(n) {
  if (n === null || n === undefined) return '—';
  return ints.format(n);
}

/** Token counts: exact below 10,000, then 12.4K / 1.2M. */
export function tokens(n) {
  if (n === null || n === undefined) return '—';
  if (Math.abs(n) < 10000) return ints.format(n);
  return compactFmt.format(n);
}

/** A share in [0,1] as a percentage; from 51% whole numbers, else one
 *  decimal. Rounding never crosses a line that matters: a share over half
 *  never reads "50.0%", a share short of all never "100%", a share above
 *  none never "0.0%". */
export function percent(share) {
  const p = share * 100;
  if (p === 0 || p === 100) return `${p}%`;
  if (p >= 51) return `${Math.min(Math.round(p), 99)}%`;
  if (p > 50) return `${Math.max(Math.floor(p * 10) / 10, 50.1).toFixed(1)}%`;
  if (p < 0.1) return '<0.1%';
  return `${p.toFixed(1)}%`;
}

/** Relative time such as "2m ago". iso may be null. */
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.floor((now - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Milliseconds as "850 ms" / "1.2 s". */
export function ms(v) {
  if (v === null || v === undefined) return '—';
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
}

/** Inbound shapes {"openai":60,"anthropic":27} as [["openai",60],["anthropic",27]], largest first. */
export function shapeList(shapes) {
  return Object.entries(shapes || {})
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** "openai 60 anthropic 27" */
export function shapes(obj) {
  return shapeList(obj).map(([k, n]) => `${k} ${int(n)}`).join(' ');
}

export const UNTAGGED = 'untagged';

/**
 * The identity that holds more than half of the spend, or null.
 * rows: [{name, cost}]; the untagged bucket counts toward the total but is
 * never named as the top identity.
 */
export function topShare(rows) {
  let total = 0;
  for (const r of rows) total += r.cost || 0;
  if (!(total > 0)) return null;
  let best = null;
  for (const r of rows) {
    if (r.untagged) continue;
    const share = (r.cost || 0) / total;
    if (share > 0.5 && (!best || share > best.share)) best = { name: r.name, share };
  }
  return best;
}

/**
 * Sort identity rows: by cost (default) or calls, descending; untagged last;
 * ties by name.
 */
export function sortRows(rows, by, nameOf, isUntagged) {
  const val = (r) => (by === 'calls' ? r.calls || 0 : r.cost_usd || 0);
  return [...rows].sort((a, b) => {
    const ua = isUntagged(a) ? 1 : 0;
    const ub = isUntagged(b) ? 1 : 0;
    if (ua !== ub) return ua - ub;
    return val(b) - val(a) || String(nameOf(a)).localeCompare(String(nameOf(b)));
  });
}

/** Group label for /analytics/cost groups: name if given, else key. */
export function groupLabel(g) {
  const s = g.name ?? g.key;
  return s === null || s === undefined || s === '' ? '(none)' : String(s);
}
