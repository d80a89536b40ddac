// alerts.js: what reaches me on which channel (docs/alerts.md): one row per event, one box
// per channel; admins also see the deliveries that failed, with the remote's answer.
import { api } from './api.js';
import { h, bi, flash, errorBox, showError, field, select, busy } from './ui.js';
import { label, when } from './i18n.js';
import { me } from './state.js';

export async function alertsPage() {
  document.title = '提醒 Alerts · fieldsync';
  const p = await api.get('me/alerts');
  const box = errorBox();
  const configured = new Set(p.configured_channels);
  const table = h('table', { class: 'alerts' },
    h('caption', { class: 'sr-only' }, '提醒设置 Alert preferences'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, bi('事件 Event')),
      p.channels.map((c) => h('th', { scope: 'col' }, bi(label('channel', c)), configured.has(c) ? null : h('small', { class: 'muted' }, ' (未配置 not set up)'))))),
    h('tbody', {}, p.available_events.map((ev) => h('tr', {},
      h('th', { scope: 'row' }, bi(label('action', ev))),
      p.channels.map((c) => h('td', {}, h('input', {
        type: 'checkbox', name: ev + ':' + c, 'aria-label': `${label('action', ev)} · ${label('channel', c)}`,
        checked: (p.events[ev] || []).includes(c),
      })))))));
  const form = h('form', { class: 'card', id: 'alerts-form' },
    h('p', { class: 'muted' }, p.defaults ? '当前为角色默认设置 These are your role\'s defaults.' : ''),
    h('div', { class: 'table-wrap' }, table),
    field('语言 Language', select('lang', [['zh', '中文'], ['en', 'English'], ['both', '中文 + English']], p.lang)),
    box,
    h('button', { type: 'submit', class: 'primary' }, bi('保存 Save')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form, async () => {
      showError(form, box, null);
      const events = {};
      for (const cb of form.querySelectorAll('input[type=checkbox]:checked')) {
        const [e, c] = cb.name.split(':');
        (events[e] ||= []).push(c);
      }
      try {
        await api.put('me/alerts', { lang: form.lang.value, events });
        flash('已保存 Saved');
      } catch (e) {
        showError(form, box, e);
      }
    });
  });
  const parts = [h('div', { class: 'page-head' }, h('h1', {}, bi('提醒 Alerts'))), await contactForm(), form];
  if (me()?.role === 'admin') {
    const failed = await api.get('alerts/failed');
    parts.push(h('section', { class: 'card', id: 'alerts-failed' }, h('h2', {}, bi('发送失败 Failed deliveries')),
      failed.items.length === 0 ? h('p', { class: 'empty' }, '没有 None') : h('ul', { class: 'plain items' }, failed.items.map((f) => h('li', {},
        h('strong', {}, label('channel', f.channel)), ' · ', f.target || '', ' · ', f.status === 'failed' ? '已放弃 given up' : '重试中 retrying',
        ` · ${f.attempts}×`, h('div', {}, f.text), h('div', { class: 'muted' }, when(f.created_at), ' · ', f.last_answer))))));
  }
  return h('section', {}, parts);
}

// contactForm is my own email (alert mail) and phone (text messages, group robot mentions).
async function contactForm() {
  const u = (await api.get('me')).user || {};
  const box = errorBox();
  const form = h('form', { class: 'card', id: 'contact-form', novalidate: true },
    h('h2', {}, bi('我的联系方式 My email and phone')),
    h('p', { class: 'muted' }, '邮件提醒发往邮箱，短信发往电话，群机器人按电话 @ 您。Alert mail goes to the email, text messages to the phone; the group robots @ you by phone.'),
    h('div', { class: 'grid3' },
      field('电话 Phone', h('input', { name: 'phone', type: 'tel', value: u.phone || '' })),
      field('邮箱 Email', h('input', { name: 'email', type: 'email', value: u.email || '' }))),
    box,
    h('button', { type: 'submit' }, bi('保存联系方式 Save contact')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form, async () => {
      showError(form, box, null);
      try {
        const saved = await api.patch('me', { phone: form.elements.phone.value.trim(), email: form.elements.email.value.trim() });
        form.elements.phone.value = saved.phone || '';
        form.elements.email.value = saved.email || '';
        flash('联系方式已保存 Contact saved');
      } catch (e) { showError(form, box, e); }
    });
  });
  return form;
}
