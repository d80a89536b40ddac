// ui.js: building the DOM without innerHTML (every text is set as text, so a customer name
// can never become markup), flash messages and form error display.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// bi renders a bilingual label "中文 English" as 中文 <small>English</small>, as a list of nodes.
export function bi(text) {
  const i = text.search(/ [A-Za-z]/);
  if (i < 0) return [text];
  return [text.slice(0, i) + ' ', h('small', { class: 'en' }, text.slice(i + 1))];
}

let flashTimer = 0;
export function flash(message, kind = 'ok') {
  const el = document.getElementById('flash');
  el.replaceChildren(h('div', { class: 'flash-msg ' + kind }, message));
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => el.replaceChildren(), 6000);
}

// errorBox is the place a form shows the API's error; showError fills it and marks the
// field the error names.
export function errorBox() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

export function showError(form, box, err) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  if (!err) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.hidden = false;
  box.replaceChildren(err.message || String(err));
  const f = err.field && form.querySelector(`[name="${CSS.escape(err.field)}"]`);
  if (f) {
    f.setAttribute('aria-invalid', 'true');
    f.focus();
  }
}

// field wraps a control with its bilingual label.
export function field(text, control, hint) {
  const id = control.id || 'f-' + Math.random().toString(36).slice(2, 9);
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, bi(text)), control, hint ? h('small', { class: 'hint' }, hint) : null);
}

export function select(name, options, value, attrs = {}) {
  return h('select', { name, ...attrs }, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

export function badge(text, kind) {
  return h('span', { class: 'badge ' + (kind || '') }, text);
}

// busy disables a form's buttons while fn runs.
export async function busy(form, fn) {
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    return await fn();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// askFirst puts a question after el with 确认 Confirm / 返回 Go back and runs fn only on
// Confirm: an irreversible step (cancelling a ticket, upholding a complaint, approving a
// month) is never one click away.
export function askFirst(el, question, fn) {
  el.parentElement?.querySelector(':scope > .confirm')?.remove();
  const box = h('div', { class: 'confirm', role: 'alertdialog', 'aria-label': question },
    h('p', {}, question),
    h('button', { type: 'button', class: 'danger confirm-yes', onclick: () => { box.remove(); fn(); } }, bi('确认 Confirm')), ' ',
    h('button', { type: 'button', class: 'confirm-no', onclick: () => { box.remove(); el.focus(); } }, bi('返回 Go back')));
  el.after(box);
  box.querySelector('.confirm-no').focus();
}
