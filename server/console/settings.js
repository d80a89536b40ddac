// settings.js: every setting with its description, edited by its type (numbers within
// their range when the server gives one, lists as comma-separated items), saved together
// (all or nothing, admins only), and the history of who changed what when.
import { api } from './api.js';
import { h, bi, flash, errorBox, showError, busy } from './ui.js';
import { when } from './i18n.js';
import { me, userName, loadSession } from './state.js';

// control builds the input for one setting from its current value's type.
function control(s, admin) {
  const attrs = { name: s.key, id: 'set-' + s.key, disabled: !admin };
  if (typeof s.value === 'number') {
    return h('input', { ...attrs, type: 'number', step: 1, value: String(s.value), min: s.min ?? null, max: s.max ?? null });
  }
  if (Array.isArray(s.value)) return h('input', { ...attrs, value: s.value.join(', '), 'data-list': 'true' });
  return h('input', { ...attrs, value: s.value ?? '' });
}

// read turns an input back into the setting's type; a number that is not one stays text so
// the server names it.
function read(el, s) {
  const v = el.value.trim();
  if (typeof s.value === 'number') return v !== '' && Number.isInteger(Number(v)) ? Number(v) : v;
  if (Array.isArray(s.value)) return v ? v.split(/[,，]/).map((x) => x.trim()).filter(Boolean) : [];
  return v;
}

const show = (v) => (Array.isArray(v) ? v.join(', ') : v === undefined || v === null ? '—' : String(v));

function range(s) {
  if (s.min === undefined && s.max === undefined) return '';
  return `${s.min ?? ''}–${s.max ?? ''}`;
}

export async function settingsPage() {
  document.title = '设置 Settings · fieldsync';
  const admin = me()?.role === 'admin';
  const [settings, history] = await Promise.all([api.get('settings'), api.get('settings/history?limit=100')]);
  const box = errorBox();
  const rows = settings.items.map((s) => {
    const el = control(s, admin);
    return h('tr', { dataset: { key: s.key } },
      h('th', { scope: 'row' }, h('label', { for: el.id }, h('code', {}, s.key))),
      h('td', {}, el),
      h('td', { class: 'muted small' }, s.description || '', range(s) ? h('div', {}, '范围 Range ', range(s)) : null));
  });
  const form = h('form', { class: 'card', id: 'settings-form', novalidate: true },
    h('div', { class: 'table-wrap' }, h('table', { class: 'settings' },
      h('thead', {}, h('tr', {}, ['设置 Setting', '值 Value', '说明 Description'].map((x) => h('th', { scope: 'col' }, bi(x))))),
      h('tbody', {}, rows))),
    box,
    admin ? h('button', { type: 'submit', class: 'primary' }, bi('保存修改 Save changes'))
      : h('p', { class: 'muted' }, '仅管理员可修改设置 Only an admin changes settings'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    const body = {};
    for (const s of settings.items) {
      const v = read(form.elements[s.key], s);
      if (JSON.stringify(v) !== JSON.stringify(s.value)) body[s.key] = v;
    }
    if (!Object.keys(body).length) { flash('没有修改 Nothing changed'); return; }
    await busy(form, async () => {
      try {
        await api.put('settings', body);
        await loadSession(); // the time zone and other settings every page uses
        flash(`已保存 Saved: ${Object.keys(body).join(', ')}`);
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      } catch (e) { showError(form, box, e); }
    });
  });

  const hist = h('div', { class: 'card' }, h('h2', {}, bi('修改记录 History')),
    history.items.length === 0 ? h('p', { class: 'muted' }, '没有记录 No changes') : h('table', { class: 'settings-history' },
      h('thead', {}, h('tr', {}, ['时间 When', '人员 Who', '设置 Setting', '原值 Was', '新值 Now'].map((x) => h('th', { scope: 'col' }, bi(x))))),
      h('tbody', {}, history.items.map((c) => {
        let f = {};
        try { f = typeof c.fields === 'string' ? JSON.parse(c.fields) : c.fields || {}; } catch { /* shown empty */ }
        const [was, now] = Array.isArray(f.value) ? f.value : [undefined, f.value];
        return h('tr', {}, h('td', { class: 'nowrap' }, when(c.at)), h('td', {}, userName(c.actor_id)), h('td', {}, h('code', {}, c.id)),
          h('td', {}, c.op === 'create' ? '（默认 default）' : show(was)), h('td', {}, show(now)));
      }))));
  return h('section', {}, h('div', { class: 'page-head' }, h('h1', {}, bi('设置 Settings'))), form, hist);
}
