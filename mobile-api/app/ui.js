// ui.js: the few DOM helpers the screens share.

/** h('div', {class: 'x', onclick: fn}, children...) builds an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

let toastTimer = 0;
/** Shows a short message at the bottom of the screen. */
export function toast(msg, kind = '') {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = 'show ' + kind;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = ''; }, 4000);
}

/** An in-page dialog (no window.confirm, which a WebView may suppress); resolves true or false. */
export function ask(title, body, yes, no) {
  return new Promise((resolve) => {
    const close = (v) => { d.remove(); resolve(v); };
    const d = h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true' },
      h('div', { class: 'card' }, h('h2', {}, title), body,
        h('div', { class: 'row' },
          h('button', { type: 'button', class: 'secondary', id: 'dialog-no', onclick: () => close(false) }, no),
          h('button', { type: 'button', class: 'danger', id: 'dialog-yes', onclick: () => close(true) }, yes))));
    document.body.append(d);
  });
}

/** Formats an RFC 3339 time in the phone's zone, short. */
export function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return s;
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Money in fen as yuan. */
export const yuan = (fen) => (typeof fen === 'number' ? '¥' + (fen / 100).toFixed(2) : '');
