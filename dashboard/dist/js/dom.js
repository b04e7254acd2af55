// Tiny DOM builder. Data is only ever set through text nodes, textContent
// and attributes — never innerHTML — so a key named `<img src=x onerror=…>`
// is shown as the text it is.

/**
 * h('td', {class: 'num', title: 'x', dataset: {k: 'v'}, on: {click: fn}}, child, 'text', …)
 * Children: Node, string/number (→ text node), null/false (skipped), arrays.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'style') for (const [p, sv] of Object.entries(v)) el.style.setProperty(p, sv);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

export function $$(sel, root = document) {
  return [...root.querySelectorAll(sel)];
}

/**
 * Replace el's children, keeping keyboard focus on the element with the same
 * data-fk (focus key) if the focused element was inside el, else on el (a
 * cleared filter's chip is gone: focus must not fall back to the page).
 */
export function replace(el, ...children) {
  const active = document.activeElement;
  const fk = active && el.contains(active) ? active.dataset.fk : undefined;
  el.replaceChildren();
  append(el, children);
  if (fk !== undefined) {
    const again = [...el.querySelectorAll('[data-fk]')].find((n) => n.dataset.fk === fk);
    if (again) {
      again.focus({ preventScroll: true });
    } else {
      if (!el.hasAttribute('tabindex')) el.setAttribute('tabindex', '-1');
      el.focus({ preventScroll: true });
    }
  }
}
