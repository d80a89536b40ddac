// users.js: people and their devices (admin): add a user, change role and employment
// facts, disable or enable (their sessions and live connections end at once), reset a
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
        const u = await api.post('users', body);
        flash(`${u.name} 已创建 created`);
        reload();
      } catch (e) { showError(form, box, e); }
    });
  });
  return form;
}

// userRow is one user with the admin's controls: role and employment facts saved together
// (If-Match), disable/enable, and a password reset.
function userRow(u, devices, reload) {
  const box = errorBox();
  const role = select('role', state.meta.roles.map((r) => [r, label('role', r)]), u.role);
  const dedicated = h('input', { type: 'checkbox', name: 'dedicated', checked: !!u.dedicated });
  const probation = h('input', { type: 'checkbox', name: 'probation', checked: !!u.probation });
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
      h('label', { class: 'check' }, dedicated, ' ', bi('专职 Dedicated')),
      h('label', { class: 'check' }, probation, ' ', bi('试用期 Probation')),
      h('button', { type: 'submit' }, bi('保存 Save')),
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
    devices.length ? h('ul', { class: 'plain devices' }, devices.map((d) => h('li', {},
      h('span', {}, d.name || d.device_id), ' · ', h('span', { class: 'muted' }, '最近在线 last seen ', d.last_seen_at ? when(d.last_seen_at) : '—'), ' ',
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
    const body = {};
    if (role.value !== u.role) body.role = role.value;
    if (dedicated.checked !== !!u.dedicated) body.dedicated = dedicated.checked;
    if (probation.checked !== !!u.probation) body.probation = probation.checked;
    if (!Object.keys(body).length) { flash('没有修改 Nothing changed'); return; }
    patch(form, body, `${u.name} 已保存 saved`);
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
