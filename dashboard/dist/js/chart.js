// Bar charts over time with the vendored uPlot (a global from vendor/uPlot.iife.min.js).
import { h } from './dom.js';

const BUCKET_SECONDS = { minute: 60, hour: 3600, day: 86400 };
const WINDOW_SECONDS = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };

export function bucketSeconds(bucket) {
  return BUCKET_SECONDS[bucket] || 3600;
}

/** The chart title's "per …": day buckets are UTC days, and say so. */
export function bucketLabel(bucket) {
  return bucket === 'day' ? 'UTC day' : (bucket || 'hour');
}

/** A point's field for uPlot: null stays null (an unknown cost, drawn as no
 *  bar and read "—" in the legend, never $0), anything else a number. */
function field(p, f) {
  return p[f] === null ? null : Number(p[f]) || 0;
}

/**
 * Turn API points [{t, ...}] into uPlot columns over the whole window, with
 * empty buckets as 0 so gaps read as "no traffic". If the API's buckets don't
 * sit on the UTC grid, its points are used as they are. to is the answer's
 * "to": the window ends on the server's clock, not the browser's, which may
 * lag and would add a bar the API never answered, drawn as "no traffic".
 */
export function fillSeries(points, bucket, windowName, fields, to) {
  const toMs = Date.parse(to);
  const nowMs = Number.isNaN(toMs) ? Date.now() : toMs;
  const size = bucketSeconds(bucket);
  const pts = points
    .map((p) => ({ ...p, ts: Math.floor(Date.parse(p.t) / 1000) }))
    .filter((p) => !Number.isNaN(p.ts))
    .sort((a, b) => a.ts - b.ts);
  // [start, end]: the window is [to - its length, to), to maybe on a bucket's edge.
  const start = Math.floor(nowMs / 1000) - (WINDOW_SECONDS[windowName] || 86400);
  const end = Math.floor((nowMs - 1) / 1000);
  const aligned = pts.every((p) => p.ts % size === 0);
  let xs;
  if (aligned) {
    const byTs = new Map(pts.map((p) => [p.ts, p]));
    xs = [];
    const first = Math.floor(start / size) * size;
    for (let t = first; t <= end; t += size) xs.push(t);
    for (const p of pts) if (!xs.includes(p.ts)) xs.push(p.ts);
    xs.sort((a, b) => a - b);
    return [xs, ...fields.map((f) => xs.map((t) => (byTs.has(t) ? field(byTs.get(t), f) : 0)))];
  }
  xs = pts.map((p) => p.ts);
  return [xs, ...fields.map((f) => pts.map((p) => field(p, f)))];
}

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

// y-axis steps for counts: whole numbers only (else a max of 2 calls gets
// ticks at 0.5 that read "0, 1, 1, 2, 2").
const INT_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8].map((p) => m * p)).sort((a, b) => a - b);

/**
 * A bar chart: series [{label, color (css var), fmt}] drawn in order, so a
 * later, smaller series (errors) sits over an earlier one (calls). integer:
 * the values are counts, so the y axis ticks only whole numbers.
 */
export class BarChart {
  constructor(container, { series, yFmt, bucket, height = 220, label, integer = false }) {
    this.container = container;
    this.integer = integer;
    this.defs = series;
    this.yFmt = yFmt;
    this.height = height;
    this.bucket = bucket;
    this.u = null;
    this.host = h('div', { class: 'chart-host', role: 'img', 'aria-label': label });
    container.replaceChildren(this.host);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(container);
  }

  width() {
    return Math.max(240, Math.floor(this.container.clientWidth));
  }

  resize() {
    if (this.u && this.width() !== this.u.width) this.u.setSize({ width: this.width(), height: this.height });
  }

  make(data) {
    const text = cssVar('--muted', '#6b7280');
    const grid = cssVar('--grid', '#eceef2');
    const font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    const size = bucketSeconds(this.bucket);
    // Day buckets are UTC days: labelled with the browser's date, a UTC
    // midnight reads as the day before west of Greenwich. Hours read in
    // local time.
    const utcDays = size >= 86400;
    const timeFmt = utcDays
      ? (ts) => `${new Date(ts * 1000).toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' })} UTC`
      : (ts) => new Date(ts * 1000).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
    const opts = {
      ...(utcDays ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC') } : {}),
      width: this.width(),
      height: this.height,
      padding: [10, 28, 0, 4], // room on the right for the last time label
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      select: { show: false },
      legend: { show: true, live: true },
      scales: {
        // A bar starts at its bucket's time and spans the bucket (align 1), so
        // the scale runs one bucket past the last one: else the newest bucket
        // (where a fresh gateway's calls all are) is drawn outside the plot.
        x: { time: true, range: (u, min, max) => [min, max + size] },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] },
      },
      axes: [
        { stroke: text, font, grid: { stroke: grid, width: 1 }, ticks: { show: false } },
        {
          stroke: text, font, size: 64, grid: { stroke: grid, width: 1 }, ticks: { show: false },
          values: (u, splits) => splits.map((v) => this.yFmt(v)),
          ...(this.integer ? { incrs: INT_INCRS } : {}),
        },
      ],
      series: [
        { value: (u, ts) => (ts == null ? '—' : timeFmt(ts)) },
        ...this.defs.map((d) => {
          const c = cssVar(d.color, '#3461c1');
          return {
            label: d.label,
            stroke: c,
            fill: c,
            width: 0,
            points: { show: false },
            paths: uPlot.paths.bars({ size: [0.72, 48, 1], align: 1 }),
            value: (u, v) => (v == null ? '—' : d.fmt(v)),
          };
        }),
      ],
    };
    this.u = new uPlot(opts, data, this.host);
  }

  setData(data, bucket) {
    if (!this.u || bucket !== this.bucket) {
      this.bucket = bucket;
      if (this.u) this.u.destroy();
      this.host.replaceChildren();
      this.make(data);
    } else {
      this.u.setData(data);
    }
  }

  destroy() {
    this.ro.disconnect();
    if (this.u) this.u.destroy();
    this.u = null;
  }
}
