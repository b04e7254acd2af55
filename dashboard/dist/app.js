// Metis dashboard: tabs, URL state, the refresh loop. Plain ES modules, no build.
import { $, $$, h } from './js/dom.js';
import { scopeKey } from './js/api.js';
import { read, toSearch, href, TABS } from './js/state.js';
import { filterBar } from './js/ui.js';
import { costView } from './js/cost.js';
import { activityView } from './js/activity.js';
import { identityView } from './js/identity.js';

const REFRESH_MS = 5000;

let current = read();
let controller = null;
let timer = null;
let seq = 0;
let lastOk = 0;

const app = {
  keyNames: new Map(), // gateway_key_id → name, learned from any response
  /** An in-page link to the state `patch` makes: a real href (shareable,
   *  opens in a new tab) and, in data-nav, the patch a click applies. */
  navLink: (patch, attrs, ...children) => h('a', {
    ...attrs, href: href(current, patch), dataset: { ...attrs.dataset, nav: JSON.stringify(patch) },
  }, ...children),
  update,
  filterBar: (s) => filterBar(s, { onClear: (f) => update({ [f]: '' }), navLink: app.navLink, keyNames: app.keyNames }),
};

const panels = Object.fromEntries(TABS.map((t) => [t, $(`#panel-${t}`)]));
const views = {
  cost: costView(panels.cost, app),
  activity: activityView(panels.activity, app),
  identity: identityView(panels.identity, app),
};

function renderedKey(s) {
  return s.tab === 'identity' ? new URLSearchParams({ window: s.window }).toString() : scopeKey(s);
}

/** Apply a state change; push a history entry unless told not to. */
function update(patch, { push = true, refetch = true } = {}) {
  const prev = current;
  current = { ...current, ...patch };
  const url = toSearch(current);
  // The same URL again (a click on the current window or tab) adds no entry.
  if (url !== toSearch(prev)) history[push ? 'pushState' : 'replaceState'](null, '', url);
  chrome();
  // After a drill-down the clicked link is gone: move focus to the new panel
  // (but leave it on the tab when the tablist itself was used).
  if (prev.tab !== current.tab && document.activeElement?.getAttribute('role') !== 'tab') {
    panels[current.tab].focus({ preventScroll: true });
  }
  if (!refetch && views[current.tab].render) {
    views[current.tab].render(current);
    return;
  }
  if (prev.live !== current.live && prev.tab === current.tab && prev.window === current.window &&
      scopeKey(prev) === scopeKey(current)) {
    schedule(current.live ? 0 : null);
    return;
  }
  refresh();
}

function chrome() {
  for (const b of $$('[role=tab]')) {
    const on = b.dataset.tab === current.tab;
    b.setAttribute('aria-selected', on ? 'true' : 'false');
    b.tabIndex = on ? 0 : -1;
  }
  for (const [t, p] of Object.entries(panels)) p.hidden = t !== current.tab;
  for (const b of $$('#windows button')) b.setAttribute('aria-pressed', b.dataset.window === current.window ? 'true' : 'false');
  const live = $('#live');
  live.setAttribute('aria-pressed', current.live ? 'true' : 'false');
  live.textContent = current.live ? 'Live · 5s' : 'Paused';
  live.title = current.live ? 'Auto-refresh every 5 seconds — click to pause' : 'Auto-refresh paused — click to resume';
  document.title = `Metis · ${$(`#tab-${current.tab}`).textContent}`;
}

function showError(e) {
  const box = $('#error');
  if (!e) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.hidden = false;
  box.textContent = `Couldn't load analytics (${e.message}).${current.live ? ' Retrying every 5 s.' : ''}`;
}

function stamp() {
  const el = $('#updated');
  if (!lastOk) return;
  el.textContent = `Updated ${new Date(lastOk).toLocaleTimeString()}${current.live ? '' : ' · auto-refresh paused'}`;
}

async function refresh() {
  clearTimeout(timer);
  if (controller) controller.abort();
  controller = new AbortController();
  const my = ++seq;
  const s = current;
  const panel = panels[s.tab];
  panel.setAttribute('aria-busy', 'true');
  try {
    await views[s.tab].refresh(s, controller.signal);
    if (my !== seq) return;
    panel.dataset.rendered = renderedKey(s);
    panel.dataset.gen = String(my);
    lastOk = Date.now();
    showError(null);
    stamp();
  } catch (e) {
    if (e.name === 'AbortError' || my !== seq) return;
    console.error(e);
    showError(e);
  } finally {
    if (my === seq) {
      panel.removeAttribute('aria-busy');
      schedule(REFRESH_MS);
    }
  }
}

function schedule(ms) {
  clearTimeout(timer);
  stamp();
  if (ms === null || !current.live || document.hidden) return;
  timer = setTimeout(refresh, ms);
}

// Tabs: click, and arrow keys across the tablist.
for (const b of $$('[role=tab]')) {
  b.addEventListener('click', () => update({ tab: b.dataset.tab }));
  b.addEventListener('keydown', (e) => {
    const tabs = $$('[role=tab]');
    const i = tabs.indexOf(b);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = tabs[(to + tabs.length) % tabs.length];
    next.focus();
    update({ tab: next.dataset.tab });
  });
}
for (const b of $$('#windows button')) b.addEventListener('click', () => update({ window: b.dataset.window }));
$('#live').addEventListener('click', () => update({ live: !current.live }, { push: false }));
$('#refresh').addEventListener('click', () => refresh());

// In-page links (drill-downs, filters) keep the page. A link carries the
// change it stands for (data-nav), applied to the state as it is now: its
// href was made when the panel was drawn, before a pause or a window the
// panel has not shown yet, which a click must not undo.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  update(a.dataset.nav ? JSON.parse(a.dataset.nav) : read(new URL(a.href).search));
});
window.addEventListener('popstate', () => {
  current = read();
  chrome();
  refresh();
});
document.addEventListener('visibilitychange', () => {
  if (document.hidden) clearTimeout(timer);
  else if (current.live) refresh();
});

chrome();
refresh();
