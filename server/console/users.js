// users.js: people and their devices (admin): add a user, change role, email and phone
// (where alerts go) and employment facts, disable or enable (their sessions and live connections end at once), reset a
// password; each user's phones with when they were last seen, and revoke.
import { api } from './api.js';
import { h, bi, flash, errorBox, showError, field, select, badge, busy } from './ui.js';
import { label, when } from './i18n.js';
import { state, me } from './state.js';

const enc = encodeURIComponent;

function newUserForm(reload) {
  const box = errorBox();
  const form = h('form', { class: 'card', id: 'user-new', novalidate: true },
    h('h2', {}, bi('新用户 New user')),
    h('div', { class: 'grid3' },
      field('用户名 Username', h('input', { name: 'username', autocomplete: 'off', required: true })),
      field('姓名 Name', h('input', { name: 'name', required: true })),
      field('角色 Role', select('role', state.meta.roles.map((r) => [r, label('role', r)]), 'technician')),
      field('电话 Phone', h('input', { name: 'phone', type: 'tel' })),
      field('邮箱 Email', h('input', { name: 'email', type: 'email' })),
      field('初始密码 Initial password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true }))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'dedicated', checked: true }), ' ', bi('专职售后人员 Dedicated after-sales staff')),
    ' ',
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'probation' }), ' ', bi('试用期 On probation')),
    box,
    h('button', { type: 'submit', class: 'primary' }, bi('创建 Create')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    const f = form.elements;
    await busy(form, async () => {
      try {
        const body = { username: f.username.value.trim(), name: f.name.value.trim(), role: f.role.value, password: f.password.value,
          dedicated: f.dedicated.checked, probation: f.probation.checked };
        if (f.phone.value.trim()) body.phone = f.phone.value.trim();
        if (f.email.value.trim()) body.email = f.email.value.trim();
        const u = await api.post('users', body);
        flash(`${u.name} 已创建 created`);
        reload();
      } catch (e) { showError(form, box, e); }
    });
  });
  return form;
}

// employment is a user's dated probation / dedicated history (a month is computed with the
// entry in force on its first day) with a form to record a change from a date.
function employment(u, formOf, patch) {
  const hist = Array.isArray(u.employment) ? u.employment : [];
  const yes = (b, t) => (b ? t : '非 not ' + t);
  const from = h('input', { type: 'date', name: 'from', 'aria-label': '生效日期 From' });
  const prob = h('input', { type: 'checkbox', name: 'e_probation', checked: !!u.probation });
  const ded = h('input', { type: 'checkbox', name: 'e_dedicated', checked: !!u.dedicated });
  const record = () => {
    if (!from.value) { from.focus(); flash('请填写生效日期 Give the date the change takes effect', 'err'); return; }
    // Without a history the record starts with the facts as they were when the user was added.
    const list = hist.length ? hist.map((e) => ({ ...e })) : [{ from: (u.created_at || '2000-01-01').slice(0, 10), probation: !!u.probation, dedicated: !!u.dedicated }];
    const next = list.filter((e) => e.from !== from.value);
    next.push({ from: from.value, probation: prob.checked, dedicated: ded.checked });
    next.sort((a, b) => (a.from < b.from ? -1 : 1));
    patch(formOf(), { employment: next }, `${u.name} 的任职变更已记录 employment change recorded`);
  };
  return h('div', { class: 'employment' },
    h('span', { class: 'muted' }, '任职 Employment: '),
    hist.length ? hist.map((e) => h('span', { class: 'badge' }, `${e.from} 起 from: ${yes(e.probation, '试用 probation')} · ${yes(e.dedicated, '专职 dedicated')}`))
      : [badge(u.probation ? '试用期 Probation' : '已转正 Past probation'), ' ', badge(u.dedicated ? '专职 Dedicated' : '非专职 Not dedicated')],
    h('span', { class: 'employment-change' }, ' ', from,
      h('label', { class: 'check' }, prob, ' ', bi('试用期 Probation')),
      h('label', { class: 'check' }, ded, ' ', bi('专职 Dedicated')),
      h('button', { type: 'button', class: 'record-employment', onclick: record }, bi('记录变更 Record change'))));
}

// userRow is one user with the admin's controls: role (If-Match), disable/enable, a password
// reset, the dated employment facts, and their phones.
// outbox says how much waits on a phone as it last reported (its hello): many changes, or
// old ones, mean work that is not reaching the office.
function outbox(d) {
  if (d.pending === null || d.pending === undefined) return null;
  if (!d.pending) return h('span', { class: 'pending muted' }, bi('待上传 0 unsent'));
  return badge(`待上传 ${d.pending} unsent` + (d.pending_since ? ` · 最早 oldest ${when(d.pending_since)}` : ''), d.pending >= 50 ? 'danger' : 'warn');
}

function userRow(u, devices, reload) {
  const box = errorBox();
  const role = select('role', state.meta.roles.map((r) => [r, label('role', r)]), u.role);
  const active = u.active !== false;
  const patch = async (form, body, done) => busy(form, async () => {
    showError(form, box, null);
    try {
      await api.patch('users/' + enc(u.id), body, u.version);
      flash(done);
      reload();
    } catch (e) { showError(form, box, e); }
  });
  const form = h('form', { class: 'user-row', dataset: { user: u.username } },
    h('div', { class: 'user-head' }, h('strong', {}, u.name), ' ', h('code', {}, u.username), ' ',
      active ? null : badge('已停用 Disabled', 'danger'), u.id === me()?.id ? badge('本人 You', '') : null),
    h('div', { class: 'user-controls' },
      field('角色 Role', role),
      h('button', { type: 'submit' }, bi('保存角色 Save role')),
      h('button', { type: 'button', class: active ? 'danger toggle-active' : 'toggle-active',
        onclick: () => patch(form, { active: !active }, active ? `${u.name} 已停用 disabled` : `${u.name} 已启用 enabled`) },
      bi(active ? '停用 Disable' : '启用 Enable')),
      h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', placeholder: '新密码 New password', 'aria-label': '新密码 New password' }),
      h('button', { type: 'button', class: 'reset-password', onclick: () => busy(form, async () => {
        showError(form, box, null);
        try {
          await api.post(`users/${enc(u.id)}/password`, { password: form.elements.new_password.value });
          form.elements.new_password.value = '';
          flash(`${u.name} 的密码已重置 password reset`);
        } catch (e) { e.field = 'new_password'; showError(form, box, e); }
      }) }, bi('重置密码 Reset password'))),
    h('div', { class: 'user-contact' },
      field('电话 Phone', h('input', { name: 'phone', type: 'tel', value: u.phone || '' })),
      field('邮箱 Email', h('input', { name: 'email', type: 'email', value: u.email || '' })),
      h('button', { type: 'button', class: 'save-contact', onclick: () => patch(form,
        { phone: form.elements.phone.value.trim(), email: form.elements.email.value.trim() }, `${u.name} 的联系方式已保存 contact saved`) },
      bi('保存联系方式 Save contact'))),
    u.role === 'technician' ? employment(u, () => form, patch) : null,
    devices.length ? h('ul', { class: 'plain devices' }, devices.map((d) => h('li', {},
      h('span', {}, d.name || d.device_id), ' · ', h('span', { class: 'muted' }, '最近在线 last seen ', d.last_seen_at ? when(d.last_seen_at) : '—'), ' ',
      d.app_version ? h('span', { class: 'muted app-version' }, '版本 version ', d.app_version, ' ') : null,
      outbox(d), ' ',
      d.revoked_at ? badge('已吊销 Revoked', 'danger') : h('button', { type: 'button', class: 'link', onclick: () => busy(form, async () => {
        try {
          await api.post(`devices/${enc(d.id)}/revoke`);
          flash(`${d.name || d.device_id} 已吊销 revoked`);
          reload();
        } catch (e) { showError(form, box, e); }
      }) }, bi('吊销 Revoke'))))) : null,
    box);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (role.value === u.role) { flash('没有修改 Nothing changed'); return; }
    patch(form, { role: role.value }, `${u.name} 已保存 saved`);
  });
  return form;
}

export async function usersPage() {
  document.title = '人员 People · fieldsync';
  if (me()?.role !== 'admin') {
    return h('section', { class: 'card' }, h('h1', {}, bi('人员 People')), h('p', { class: 'error', role: 'alert' }, '仅管理员可管理人员 Only an admin manages people'));
  }
  const [users, devices] = await Promise.all([api.get('users'), api.get('devices')]);
  state.users = new Map(users.items.map((u) => [u.id, u]));
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const byUser = (id) => devices.items.filter((d) => d.user_id === id);
  return h('section', {},
    h('div', { class: 'page-head' }, h('h1', {}, bi('人员与设备 People and devices'))),
    newUserForm(reload),
    h('div', { class: 'card users' }, users.items.map((u) => userRow(u, byUser(u.id), reload))));
}
