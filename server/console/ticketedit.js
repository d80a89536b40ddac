// ticketedit.js: editing a ticket's service log. The edit names the version the user saw
// (If-Match); when someone changed the ticket meanwhile the server refuses it (412) and this
// page shows, field by field, their value beside yours, and lets the user choose.
import { api } from './api.js';
import { h, bi, errorBox, showError, field, select, busy } from './ui.js';
import { label } from './i18n.js';
import { state } from './state.js';

const enc = encodeURIComponent;

// The office's fields of the service log, with how each is edited.
const FIELDS = [
  ['contact_name', 'text'], ['contact_phone', 'text'], ['address', 'textarea'], ['fault_symptoms', 'textarea'],
  ['urgency', 'urgency'], ['service_type', 'service_type'], ['service_mode', 'service_mode'],
  ['warranty', 'warranty'], ['warranty_reason', 'text'], ['chargeable', 'bool'], ['agreed_handling', 'textarea'],
];
const LISTS = { urgency: 'urgencies', service_type: 'service_types', service_mode: 'service_modes', warranty: 'warranties' };

function control(name, kind, value) {
  if (kind === 'textarea') return h('textarea', { name, rows: 2 }, value || '');
  if (kind === 'bool') return select(name, [['false', '免费 Free of charge'], ['true', '收费 Chargeable']], String(!!value));
  if (LISTS[kind]) return select(name, state.meta[LISTS[kind]].map((v) => [v, label(kind, v)]), value);
  return h('input', { name, value: value || '' });
}

function read(form, name, kind) {
  const v = form.elements[name].value;
  return kind === 'bool' ? v === 'true' : kind === 'textarea' || kind === 'text' ? v.trim() : v;
}

// shown renders a field's value for the conflict table.
function shown(name, v) {
  if (v === null || v === undefined || v === '') return '—';
  const kind = FIELDS.find(([n]) => n === name)?.[1];
  if (kind === 'bool') return v ? '收费 Chargeable' : '免费 Free of charge';
  if (LISTS[kind]) return label(kind, v);
  return String(v);
}

export function editSection(t, reload) {
  const box = errorBox();
  const conflictBox = h('div', { class: 'conflict', id: 'edit-conflict', role: 'alert', hidden: true });
  const form = h('form', { class: 'edit-form', id: 'edit-form', dataset: { version: t.version } },
    FIELDS.map(([name, kind]) => field(label('field', name), control(name, kind, t[name]))),
    box, conflictBox,
    h('button', { type: 'submit', class: 'primary' }, bi('保存修改 Save changes')));

  // mine is what the user changed against the version they loaded.
  const mine = () => {
    const out = {};
    for (const [name, kind] of FIELDS) {
      const v = read(form, name, kind);
      if (v !== (kind === 'bool' ? !!t[name] : (t[name] ?? ''))) out[name] = v;
    }
    return out;
  };

  const save = async (body, version) => {
    await busy(form, async () => {
      try {
        await api.patch('tickets/' + enc(t.id), body, version);
        reload('工单已保存 Ticket saved');
      } catch (e) {
        if (e.code === 'precondition_failed' && e.body?.error?.record) showConflict(e, body);
        else showError(form, box, e);
      }
    });
  };

  // showConflict lays their values beside the user's, one choice per field both changed.
  const showConflict = (e, body) => {
    const err = e.body.error;
    const theirs = err.record;
    const both = err.fields || [];
    const others = (err.changed || []).filter((f) => !both.includes(f));
    const rows = both.map((name) => h('tr', { dataset: { field: name } },
      h('th', { scope: 'row' }, bi(label('field', name))),
      h('td', {}, h('label', {}, h('input', { type: 'radio', name: 'pick-' + name, value: 'theirs', checked: true }), ' ',
        h('span', { class: 'theirs' }, shown(name, theirs[name])))),
      h('td', {}, h('label', {}, h('input', { type: 'radio', name: 'pick-' + name, value: 'mine' }), ' ',
        h('span', { class: 'mine' }, shown(name, body[name]))))));
    const keep = h('button', { type: 'button', class: 'primary', id: 'conflict-save' }, bi('按所选保存 Save my choices'));
    keep.addEventListener('click', () => {
      const next = {};
      for (const [name, v] of Object.entries(body)) {
        const pick = conflictBox.querySelector(`input[name="pick-${CSS.escape(name)}"]:checked`);
        if (!pick || pick.value === 'mine') next[name] = v;
      }
      if (Object.keys(next).length === 0) return reload('保留了对方的修改 Kept their changes');
      save(next, err.current_version || theirs.version);
    });
    conflictBox.replaceChildren(
      h('h3', {}, bi('他人已修改此工单 Someone else changed this ticket')),
      h('p', {}, err.message),
      rows.length ? h('table', { class: 'conflict-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, bi('项目 Item')), h('th', { scope: 'col' }, bi('对方的值 Their value')), h('th', { scope: 'col' }, bi('您的值 Your value')))),
        h('tbody', {}, rows)) : null,
      others.length ? h('p', { class: 'muted' }, '对方还改了 They also changed: ',
        others.map((f, i) => [i ? '、' : '', label('field', f), ' → ', shown(f, theirs[f])])) : null,
      h('div', { class: 'row' }, keep, ' ',
        h('button', { type: 'button', onclick: () => reload('已放弃您的修改 Your edit was discarded') }, bi('放弃我的修改 Discard mine'))));
    conflictBox.hidden = false;
    conflictBox.scrollIntoView({ block: 'nearest' });
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    conflictBox.hidden = true;
    const body = mine();
    if (Object.keys(body).length === 0) {
      showError(form, box, { message: '没有修改 Nothing changed' });
      return;
    }
    save(body, t.version);
  });
  return h('details', { class: 'card edit', id: 'ticket-edit' }, h('summary', {}, bi('编辑服务记录 Edit the service log')), form);
}
