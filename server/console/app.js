// app.js: the console's entry point: the hash router, the login page and the ticket list.
import { api, session, setUnauthenticatedHandler, onUnauthenticated } from './api.js';
import { h, bi, flash, errorBox, showError, field, select, badge, busy } from './ui.js';
import { label, when } from './i18n.js';
import { state, loadMeta, loadSession, me, userName, customerNames, customerName, technicians } from './state.js';
import { lookupForm } from './paper.js';
import { ticketPage } from './ticket.js';
import { intakePage } from './intake.js';
import { monthsPage } from './months.js';
import { alertsPage } from './alerts.js';
import { customersPage, customerPage, importPage } from './customers.js';
import { usersPage } from './users.js';
import { settingsPage } from './settings.js';
import { renderQueues } from './queues.js';
import { moneyPage } from './money.js';
import { startLive, stopLive, deadline } from './live.js';

const main = () => document.getElementById('main');
let loaded = false;

setUnauthenticatedHandler(() => {
  stopLive();
  session.clear();
  loaded = false;
  flash('登录已过期，请重新登录 Your session ended; please log in again', 'err');
  location.hash = '#/login';
});

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/tickets';
  const [path, query] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || '') };
}

// liveChanged is the live feed's news: the page shown is read again when a change concerns
// it (any ticket for the list, this ticket or its records for a ticket page; everything
// after a gap), unless the user is typing in it: then a notice offers the refresh. The
// work-queue counts are read again on any ticket change.
function liveChanged(refs, more) {
  const { parts } = parseHash();
  const tickets = more || refs.some((r) => r.entity === 'ticket' || r.ticket_id);
  if (!tickets || !session.token || parts[0] === 'login') return;
  renderQueues(document.getElementById('queues')).catch(() => {});
  const onList = !parts[0] || (parts[0] === 'tickets' && !parts[1]);
  const onTicket = parts[0] === 'tickets' && parts[1] &&
    (more || refs.some((r) => r.id === parts[1] || r.ticket_id === parts[1]));
  if (!onList && !onTicket) return;
  const m = main();
  const typing = m.contains(document.activeElement) && document.activeElement.matches('input, textarea, select');
  if (typing || m.querySelector('form[data-dirty]') || unsaved(m)) {
    if (!document.getElementById('live-stale')) {
      m.prepend(h('p', { id: 'live-stale', class: 'notice', role: 'status' }, '此页有新的变更 This page changed elsewhere ',
        h('button', { type: 'button', class: 'link', onclick: () => route({ live: true }) }, bi('刷新 Refresh'))));
    }
    return;
  }
  route({ live: true });
}

// routing counts route() calls: a page read for an earlier call (a live refresh that was
// still loading when the user moved on) is dropped, never shown over the newer page.
let routing = 0;

// unsaved says whether any field in el holds input the user has not saved: a value other
// than the one the page was drawn with.
function unsaved(el) {
  for (const f of el.querySelectorAll('input, textarea, select')) {
    if (f.type === 'checkbox' || f.type === 'radio') { if (f.checked !== f.defaultChecked) return true; }
    else if (f.tagName === 'SELECT') {
      const drawn = Math.max(0, [...f.options].findIndex((o) => o.defaultSelected));
      if (f.options.length && f.selectedIndex !== drawn) return true;
    }
    else if (f.type !== 'file' && f.value !== f.defaultValue) return true;
  }
  return false;
}

async function route({ live = false } = {}) {
  const my = ++routing;
  const { parts, query } = parseHash();
  const top = document.getElementById('top');
  if (!session.token || parts[0] === 'login') {
    top.hidden = true;
    document.getElementById('queues').replaceChildren();
    return loginPage();
  }
  if (session.mustChangePassword) {
    top.hidden = true;
    return changePasswordPage();
  }
  top.hidden = false;
  const u = me();
  document.getElementById('who').replaceChildren(u.name, ' · ', ...bi(label('role', u.role)));
  document.querySelector('[data-nav=users]').hidden = u.role !== 'admin';
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === parts[0]) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const m = main();
  try {
    if (!loaded) {
      await loadSession();
      loaded = true;
      startLive({
        onChanges: liveChanged,
        onEnd: () => onUnauthenticated(),
        onState: (up) => { document.getElementById('live').hidden = !up; },
      });
    }
    let page;
    if (parts[0] === 'tickets' && parts[1]) page = await ticketPage(parts[1], query);
    else if (parts[0] === 'intake') page = await intakePage(query);
    else if (parts[0] === 'customers') page = parts[1] ? await customerPage(parts[1]) : await customersPage(query);
    else if (parts[0] === 'import') page = await importPage();
    else if (parts[0] === 'users') page = await usersPage();
    else if (parts[0] === 'settings') page = await settingsPage();
    else if (parts[0] === 'months') page = await monthsPage(parts[1]);
    else if (parts[0] === 'alerts') page = await alertsPage();
    else if (parts[0] === 'money') page = await moneyPage(parts[1], query);
    else page = await ticketsPage(query);
    if (my !== routing) return;
    const y = window.scrollY;
    m.replaceChildren(page);
    if (live) window.scrollTo(0, y);
    else renderQueues(document.getElementById('queues')).catch(() => {});
  } catch (e) {
    if (e.status === 401 || my !== routing) return;
    m.replaceChildren(h('section', { class: 'card' }, h('h1', {}, bi('出错了 Something went wrong')), h('p', { class: 'error', role: 'alert' }, e.message)));
  }
  if (!live) m.focus({ preventScroll: true });
}

// ---- login ----

async function loginPage() {
  document.title = '登录 Log in · fieldsync';
  const box = errorBox();
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card login', id: 'login-form' },
    h('h1', {}, bi('售后服务控制台 Service console')),
    field('用户名 Username', user),
    field('密码 Password', pass),
    box,
    h('button', { type: 'submit', class: 'primary' }, bi('登录 Log in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    await busy(form, async () => {
      try {
        const r = await api.post('auth/login', { username: user.value.trim(), password: pass.value });
        session.set(r.token, r.user, r.must_change_password);
        if (r.user.role === 'technician') {
          await api.post('auth/logout').catch(() => {});
          session.clear();
          throw Object.assign(new Error('技术员请使用手机应用 /app/ Technicians use the field app at /app/'), { field: 'username' });
        }
        loaded = false;
        if (r.must_change_password) return changePasswordPage(pass.value);
        location.hash = '#/tickets';
      } catch (e) {
        showError(form, box, e);
      }
    });
  });
  const wrap = h('div', { class: 'login-wrap' }, form);
  main().replaceChildren(wrap);
  user.focus();
  try {
    const demo = await api.get('demo');
    if (demo?.demo) wrap.append(demoHint(demo, user, pass));
  } catch { /* not a demo server */ }
}

// changePasswordPage asks for a new password when the server says the current one, chosen
// by the machine at first start, must change; nothing else is reachable until it has.
// current is the password just typed at login (asked for again after a reload).
function changePasswordPage(current = '') {
  document.title = '修改密码 Change password · fieldsync';
  const box = errorBox();
  const cur = h('input', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true });
  cur.value = current;
  const next = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const again = h('input', { name: 'new_password_again', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const form = h('form', { class: 'card login', id: 'password-form' },
    h('h1', {}, bi('修改密码 Change your password')),
    h('p', {}, '首次登录须修改系统生成的密码。 The password printed at first start must be changed at the first login.'),
    current ? null : field('当前密码 Current password', cur),
    field('新密码 New password', next, '至少 8 个字符，不能是常见密码或用户名 At least 8 characters, not a common password, not the username'),
    field('再次输入新密码 New password again', again),
    box,
    h('button', { type: 'submit', class: 'primary' }, bi('修改密码 Change password')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    if (next.value !== again.value) {
      showError(form, box, { message: '两次输入的新密码不一致 The two new passwords differ', field: 'new_password_again' });
      return;
    }
    await busy(form, async () => {
      try {
        const r = await api.post('auth/password', { current_password: cur.value, new_password: next.value });
        session.set(r.token, r.user, false);
        loaded = false;
        flash('密码已修改 Password changed');
        if (location.hash === '#/tickets') route(); else location.hash = '#/tickets';
      } catch (e) {
        showError(form, box, e);
      }
    });
  });
  main().replaceChildren(h('div', { class: 'login-wrap' }, form));
  (current ? next : cur).focus();
}

function demoHint(demo, user, pass) {
  return h('aside', { class: 'card demo', 'aria-labelledby': 'demo-title' },
    h('h2', { id: 'demo-title' }, bi('演示账号 Demo logins')),
    h('p', {}, '密码 Password: ', h('code', {}, demo.password)),
    h('ul', { class: 'plain' }, demo.users.filter((u) => u.role !== 'technician').map((u) => h('li', {},
      h('button', {
        type: 'button', class: 'link', onclick: () => { user.value = u.username; pass.value = demo.password; pass.focus(); },
      }, h('code', {}, u.username)), ' ', u.name, ' · ', bi(label('role', u.role))))),
    h('p', { class: 'muted' }, '技术员请在手机上打开 Technicians open the field app on a phone: ', h('a', { href: '/app/', id: 'field-app-link' }, '/app/')),
    h('ul', { class: 'plain', id: 'demo-technicians' }, demo.users.filter((u) => u.role === 'technician').map((u) => h('li', {},
      h('code', {}, u.username), ' ', u.name, ' · ', h('a', { href: '/app/' }, bi('手机应用 field app'))))));
}

// ---- ticket list ----

// due is the deadline that matters now (live.js's deadline), formatted.
function due(t) {
  const d = deadline(t);
  return d ? when(d) : '—';
}

const PAGE = 20;

// LIST_FILTERS are the ticket list's finding filters, named as the API names them.
const LIST_FILTERS = ['phone', 'serial', 'technician', 'urgency', 'from', 'to', 'sort'];
const SORTS = [['', '最新受理在前 Newest first'], ['received_at', '最早受理在前 Oldest first'], ['urgency', '紧急在前 Most urgent first'],
  ['due', '时限最近在前 Due soonest first'], ['-completed_at', '最近完成在前 Completed latest first'], ['number', '单号 Number'],
  ['status', '按流程状态 By status'], ['customer', '按客户 By customer']];

async function ticketsPage(query) {
  document.title = '工单 Tickets · fieldsync';
  const status = query.get('status') || '';
  const overdue = query.get('overdue') === 'true';
  const q = query.get('q') || '';
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  const params = new URLSearchParams({ limit: PAGE, offset });
  if (status === 'open') params.set('status', state.meta.statuses.filter((s) => !['closed', 'cancelled'].includes(s)).join(','));
  else if (status) params.set('status', status);
  if (overdue) params.set('overdue', 'true');
  if (q) params.set('q', q);
  // The finding filters pass through as the API takes them (docs/api.md).
  for (const k of LIST_FILTERS) if (query.get(k)) params.set(k, query.get(k));
  const res = await api.get('tickets?' + params);
  await customerNames(res.items.map((t) => t.customer_id));

  const statusOpts = [['', '全部 All'], ['open', '未结 Open'], ...state.meta.statuses.map((s) => [s, label('status', s)])];
  const v = (k) => query.get(k) || '';
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': '筛选 Filters' },
    field('状态 Status', select('status', statusOpts, status)),
    field('搜索 Search', h('input', { type: 'search', name: 'q', value: q, placeholder: '单号、客户、故障… number, customer, fault…' })),
    field('电话 Phone', h('input', { type: 'search', name: 'phone', value: v('phone'), inputmode: 'tel', placeholder: '客户或联系人 customer or contact' })),
    field('设备序列号 Serial', h('input', { type: 'search', name: 'serial', value: v('serial') })),
    field('技术员 Technician', select('technician', [['', '全部 All'], ...technicians().map((u) => [u.id, u.name])], v('technician'))),
    field('紧急程度 Urgency', select('urgency', [['', '全部 All'], ...state.meta.urgencies.map((u) => [u, label('urgency', u)])], v('urgency'))),
    field('受理自 Received from', h('input', { type: 'date', name: 'from', value: v('from') })),
    field('受理至 Received before', h('input', { type: 'date', name: 'to', value: v('to') })),
    field('排序 Sort', select('sort', SORTS, v('sort'))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'overdue', checked: overdue }), ' ', bi('仅超时 Overdue only')),
    h('button', { type: 'submit', class: 'primary' }, bi('筛选 Filter')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    const fd = new FormData(form);
    if (fd.get('status')) p.set('status', fd.get('status'));
    if (fd.get('q')) p.set('q', fd.get('q').trim());
    for (const k of LIST_FILTERS) if (String(fd.get(k) || '').trim()) p.set(k, String(fd.get(k)).trim());
    if (fd.get('overdue')) p.set('overdue', 'true');
    location.hash = '#/tickets' + (p.size ? '?' + p : '');
  });

  // A row whose deadline passes while the page is open turns red (live.js, markOverdue).
  const rows = res.items.map((t) => h('tr', { class: t.overdue ? 'overdue' : '', dataset: { id: t.id, ...(!t.overdue && deadline(t) ? { due: deadline(t) } : {}) } },
    h('td', { 'data-overdue-slot': '' }, h('a', { href: '#/tickets/' + encodeURIComponent(t.id) }, t.number), t.overdue ? [' ', badge('超时 Overdue', 'danger')] : null),
    h('td', { class: 'nowrap' }, when(t.received_at)),
    h('td', { class: 'customer' }, customerName(t.customer_id)),
    h('td', { class: 'symptoms' }, t.fault_symptoms),
    h('td', {}, badge(label('urgency', t.urgency), 'u-' + t.urgency)),
    h('td', {}, badge(label('status', t.status), 's-' + t.status)),
    h('td', {}, t.assignee_id ? userName(t.assignee_id) : '—'),
    h('td', { class: 'nowrap' }, due(t))));

  const pageLink = (off, text) => {
    const p = new URLSearchParams(query);
    p.set('offset', off);
    return h('a', { class: 'button', href: '#/tickets?' + p }, text);
  };
  const last = Math.min(offset + res.items.length, res.total);
  return h('section', {},
    h('div', { class: 'page-head' }, h('h1', {}, bi('工单 Tickets')),
      h('a', { class: 'button primary', href: '#/intake' }, bi('＋ 登记新请求 New request'))),
    form,
    lookupForm(),
    res.items.length === 0
      ? h('p', { class: 'empty' }, '没有符合条件的工单 No tickets match')
      : h('div', { class: 'table-wrap' }, h('table', { class: 'tickets' },
        h('caption', { class: 'sr-only' }, '工单列表 Ticket list'),
        h('thead', {}, h('tr', {}, ['单号 Number', '受理 Received', '客户 Customer', '故障现象 Fault', '紧急 Urgency', '状态 Status', '技术员 Technician', '时限 Due']
          .map((c) => h('th', { scope: 'col' }, bi(c))))),
        h('tbody', {}, rows))),
    h('nav', { class: 'pager', 'aria-label': '分页 Pages' },
      offset > 0 ? pageLink(Math.max(0, offset - PAGE), '‹ 上一页 Previous') : null,
      h('span', { class: 'muted' }, res.total ? `${offset + 1}–${last} / ${res.total}` : '0'),
      last < res.total ? pageLink(offset + PAGE, '下一页 Next ›') : null));
}

// ---- start ----

document.getElementById('logout').addEventListener('click', async () => {
  stopLive();
  try { await api.post('auth/logout'); } catch { /* the token may be gone already */ }
  session.clear();
  loaded = false;
  location.hash = '#/login';
});
window.addEventListener('hashchange', route);
loadMeta().catch(() => {});
route();


