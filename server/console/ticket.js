// ticket.js: one ticket: the service log, the workflow actions the role may take, feedback
// sheets, complaints, follow-up calls and the history.
import { api, openDocument } from './api.js';
import { askFirst, h, bi, flash, errorBox, showError, field, select, badge, busy } from './ui.js';
import { label, when } from './i18n.js';
import { deadline } from './live.js';
import { state, me, userName, deviceName, technicians, customerNames, customerName, allowedSteps } from './state.js';
import { canEnterPaper, paperSheetForm, scanLinks } from './paper.js';
import { editSection } from './ticketedit.js';

const enc = encodeURIComponent;

export async function ticketPage(id, query) {
  const t = await api.get('tickets/' + enc(id));
  await customerNames([t.customer_id]);
  const [site, asset] = await Promise.all([
    t.site_id ? api.get('sites/' + enc(t.site_id)).catch(() => null) : null,
    t.asset_id ? api.get('assets/' + enc(t.asset_id)).catch(() => null) : null,
  ]);
  document.title = t.number + ' · fieldsync';
  const reload = (msg) => {
    if (msg) flash(msg);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  };
  return h('article', { class: 'ticket', 'aria-labelledby': 'ticket-title' },
    h('div', { class: 'page-head' },
      h('h1', { id: 'ticket-title' }, t.number, ' ', h('span', { class: 'customer' }, customerName(t.customer_id))),
      h('div', { class: 'head-badges', dataset: !t.overdue && deadline(t) ? { due: deadline(t) } : {} },
        badge(label('status', t.status), 's-' + t.status), ' ',
        badge(label('urgency', t.urgency), 'u-' + t.urgency),
        t.overdue ? [' ', badge('超时 Overdue', 'danger')] : null)),
    h('p', { class: 'crumbs' }, h('a', { href: '#/tickets' }, '‹ 工单列表 All tickets'), ' · ',
      h('button', { type: 'button', class: 'link', onclick: (ev) => pdf(ev, 'tickets/' + enc(t.id) + '/form.pdf') }, bi('打印服务单 PDF Printable form'))),
    h('div', { class: 'cols' },
      h('div', { class: 'col-main' },
        details(t, site, asset),
        editSection(t, reload),
        sheetsSection(t, reload, query?.get('paper') === '1'),
        complaintsSection(t, reload),
        followupsSection(t, reload)),
      h('div', { class: 'col-side' },
        actionsSection(t, reload),
        eventsSection(t))));
}

async function pdf(ev, path) {
  try {
    await openDocument('/api/v1/' + path);
  } catch (e) {
    flash(e.message, 'err');
  }
}

function dl(pairs) {
  return h('dl', { class: 'fields' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, bi(k)), h('dd', {}, v === '' || v === null || v === undefined ? '—' : v)]));
}

function details(t, site, asset) {
  const f = (k) => label('field', k);
  const warranty = [label('warranty', t.warranty), t.warranty_reason ? ' · ' + t.warranty_reason : ''];
  return h('section', { class: 'card', 'aria-labelledby': 'log-title' },
    h('h2', { id: 'log-title' }, bi('售后服务记录 Service log')),
    dl([
      [f('received_at'), when(t.received_at)],
      [f('source'), label('source', t.source)],
      [f('reported_by'), userName(t.reported_by)],
      [f('verified'), t.verified ? '是 Yes' : '否，待核实 No, to verify'],
      [f('customer_id'), customerName(t.customer_id)],
      [f('site_id'), site ? site.name : '—'],
      [f('address'), t.address],
      [f('contact_name'), t.contact_name],
      [f('contact_phone'), t.contact_phone],
      [f('asset_id'), asset ? `${asset.model} · ${asset.serial}` : '—'],
      [f('fault_symptoms'), h('span', { class: 'pre' }, t.fault_symptoms)],
      [f('urgency'), label('urgency', t.urgency)],
      [f('service_type'), label('service_type', t.service_type)],
      [f('warranty'), warranty],
      [f('chargeable'), t.chargeable ? '收费 Chargeable' : '免费 Free of charge'],
      [f('agreed_handling'), t.agreed_handling],
      [f('service_mode'), label('service_mode', t.service_mode)],
      t.actual_service_mode ? [f('actual_service_mode'), label('service_mode', t.actual_service_mode)] : null,
      [f('assignee_id'), t.assignee_id ? userName(t.assignee_id) : '—'],
      [f('due_response_at'), when(t.due_response_at)],
      t.service_mode === 'onsite' ? [f('due_arrival_at'), when(t.due_arrival_at)] : null,
      t.inspection_record ? [f('inspection_record'), t.inspection_record] : null,
      t.handling_result ? [f('handling_result'), t.handling_result] : null,
      t.tech_notes ? [f('tech_notes'), t.tech_notes] : null,
      t.time_spent_min ? [f('time_spent_min'), t.time_spent_min] : null,
      t.cancel_reason ? [f('cancel_reason'), t.cancel_reason] : null,
      t.reopened_from ? [f('reopened_from'), h('a', { href: '#/tickets/' + enc(t.reopened_from) }, '→')] : null,
      t.reopened_as ? [f('reopened_as'), h('a', { href: '#/tickets/' + enc(t.reopened_as) }, '→')] : null,
    ]));
}

// ---- workflow actions ----

function actionsSection(t, reload) {
  // A coordinator moves a ticket on by receiving its sheet (on the sheet); only a manager
  // records that there is no sheet, with the reason.
  const manager = ['manager', 'admin'].includes(me()?.role);
  const steps = allowedSteps(t).filter((s) => s.action !== 'receive_sheet' || manager);
  const body = steps.length === 0
    ? h('p', { class: 'muted' }, '当前状态下您没有可执行的操作 No action for your role in this state')
    : steps.map((s) => actionForm(t, s, reload));
  return h('section', { class: 'card actions', 'aria-labelledby': 'actions-title' },
    h('h2', { id: 'actions-title' }, bi('操作 Actions')), body);
}

function actionForm(t, step, reload) {
  const box = errorBox();
  const controls = [];
  for (const p of step.params || []) {
    if (p === 'technician_id') {
      const techs = technicians();
      controls.push(field('技术员 Technician', select('technician_id', [['', '— 选择 Choose —'],
        ...techs.map((u) => [u.id, u.name + (u.probation ? ' · 试用期 probation' : '') + (u.dedicated === false ? ' · 非专职 non-dedicated' : '')])],
      step.action === 'dispatch' ? '' : t.assignee_id, { required: true })));
    } else {
      controls.push(field(p === 'reason' ? '原因 Reason' : p, h('textarea', { name: p, rows: 2, required: true })));
    }
  }
  if (step.action === 'receive_sheet') {
    controls.push(field('无反馈单的原因 No sheet: why', h('textarea', { name: 'no_sheet_reason', rows: 2, required: true })));
  }
  const danger = ['cancel', 'reject'].includes(step.action);
  const form = h('form', { class: 'action', dataset: { action: step.action } }, controls,
    h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, bi(step.action === 'dispatch' && t.assignee_id ? '改派 Reassign' : step.action === 'receive_sheet' ? '登记无反馈单 Record: no sheet' : label('action', step.action))), box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    const body = Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, String(v).trim()]));
    if (step.action === 'cancel' && form.dataset.confirmed !== 'true') {
      askFirst(form.querySelector('button[type=submit]'), `取消工单 ${t.number}？取消后不能恢复。 Cancel ticket ${t.number}? This cannot be undone.`, () => {
        form.dataset.confirmed = 'true';
        form.requestSubmit();
      });
      return;
    }
    delete form.dataset.confirmed;
    await busy(form, async () => {
      try {
        const r = await api.post(`tickets/${enc(t.id)}/actions/${enc(step.action)}`, body);
        reload(`${label('action', step.action)} ✓ → ${label('status', r.status)}`);
      } catch (e) {
        showError(form, box, e);
      }
    });
  });
  return form;
}

// ---- events ----

// eventsSection is the ticket's history, newest first: its steps and notes, every complaint,
// and, when the whole history is shown, the registration it began with.
function eventsSection(t) {
  const events = t.events || [];
  const entries = events.map((e) => ({ at: e.at, node: eventItem(e) }));
  for (const c of t.complaints || []) {
    entries.push({ at: c.received_at, node: h('li', { class: 'event complaint' },
      h('div', { class: 'ev-head' }, h('strong', {}, bi('投诉 Complaint')), ' ', badge(label('complaint_status', c.status), c.status === 'upheld' ? 'danger' : '')),
      c.description ? h('div', { class: 'pre' }, c.description) : null,
      h('div', { class: 'ev-meta' }, h('time', { datetime: c.received_at }, when(c.received_at)), ' · ', userName(c.technician_id))) });
  }
  const whole = !(t.events_total > events.length);
  if (whole && t.received_at) {
    entries.push({ at: t.received_at, node: h('li', { class: 'event registered' },
      h('div', { class: 'ev-head' }, h('strong', {}, bi('登记 Registered')), ' ', h('span', { class: 'muted' }, label('source', t.source))),
      h('div', { class: 'ev-meta' }, h('time', { datetime: t.received_at }, when(t.received_at)),
        t.reported_by ? [' · ', userName(t.reported_by)] : null)) });
  }
  // Newest first; at the same instant the later entry (a step after the registration) first.
  const order = entries.map((x, i) => ({ ...x, i, ms: Date.parse(x.at) || 0 })).sort((a, b) => b.ms - a.ms || b.i - a.i);
  return h('section', { class: 'card', 'aria-labelledby': 'events-title' },
    h('h2', { id: 'events-title' }, bi('处理记录 History')),
    whole ? null : h('p', { class: 'muted' }, `显示最近 ${events.length} 条，共 ${t.events_total} 条 Showing the latest ${events.length} of ${t.events_total}`),
    order.length === 0 ? h('p', { class: 'muted' }, '暂无 None yet') : h('ol', { class: 'events' }, order.map((x) => x.node)),
    noteForm(t));
}

function eventItem(e) {
  const d = e.details || {};
  const extra = [];
  if (d.technician_id) extra.push('→ ' + userName(d.technician_id));
  if (d.reason) extra.push(d.reason);
  if (d.service_mode) extra.push(label('service_mode', d.service_mode));
  if (d.on_behalf_of) extra.push(`代 ${userName(d.on_behalf_of)} 记录 recorded on ${userName(d.on_behalf_of)}'s behalf`);
  return h('li', { class: 'event' },
    h('div', { class: 'ev-head' }, h('strong', {}, bi(label('action', e.kind === 'action' ? e.action : e.kind))),
      e.from_status && e.to_status && e.from_status !== e.to_status
        ? h('span', { class: 'muted' }, ` ${label('status', e.from_status)} → ${label('status', e.to_status)}`) : null),
    extra.length ? h('div', {}, extra.join(' · ')) : null,
    e.note ? h('div', { class: 'pre' }, e.note) : null,
    h('div', { class: 'ev-meta' }, h('time', { datetime: e.at }, when(e.at)), ' · ', userName(e.actor_id), ' · ', deviceName(e.device_id)));
}

function noteForm(t) {
  const box = errorBox();
  const form = h('form', { class: 'inline-form' },
    field('添加备注 Add a note', h('textarea', { name: 'note', rows: 2, required: true })),
    h('button', { type: 'submit' }, bi('保存备注 Save note')), box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    await busy(form, async () => {
      try {
        await api.post(`tickets/${enc(t.id)}/notes`, { note: form.note.value.trim() });
        flash('备注已保存 Note saved');
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      } catch (e) { showError(form, box, e); }
    });
  });
  return form;
}

// ---- feedback sheets ----

function sheetsSection(t, reload, openPaper) {
  const sheets = t.sheets || [];
  let paper = null;
  if (canEnterPaper(t, me()?.role)) {
    paper = paperSheetForm(t, reload);
    paper.open = openPaper;
  }
  return h('section', { class: 'card', 'aria-labelledby': 'sheets-title' },
    h('h2', { id: 'sheets-title' }, bi('服务反馈单 Feedback sheets')),
    sheets.length === 0 ? h('p', { class: 'muted' }, '技术员尚未提交反馈单 No feedback sheet from the technician yet')
      : sheets.map((s) => sheetCard(s, reload)),
    paper);
}

function missingText(s) {
  return (s.missing || []).map((m) => label('field', m)).join('、');
}

function sheetCard(s, reload) {
  const role = me()?.role;
  const office = role === 'coordinator' || role === 'admin';
  const sealed = s.status !== 'draft';
  const complete = s.complete
    ? badge('完整 Complete', 'ok')
    : badge('不完整 Incomplete：缺 missing ' + missingText(s), 'warn');
  const forms = [];
  if (office && s.status === 'signed') {
    forms.push(sheetAction(s, 'receive', '接收 Receive', [], reload));
    forms.push(sheetAction(s, 'return', '退回 Return', [['reason', '退回原因 Reason for return']], reload, true));
  }
  if ((role === 'manager' || role === 'admin') && ['signed', 'received'].includes(s.status) && !s.complete && !s.exception_accepted) {
    forms.push(sheetAction(s, 'accept_exception', '接受例外 Accept exception', [['note', '说明 Note' + (s.absent_reason ? '' : '（必填 required）')]], reload));
  }
  return h('div', { class: 'sheet', dataset: { sheet: s.id } },
    h('div', { class: 'sheet-head' }, h('strong', {}, s.number), ' ', badge(label('sheet_status', s.status), 'sh-' + s.status), ' ', sealed ? complete : null,
      s.exception_accepted ? [' ', badge('例外已接受 Exception accepted', 'ok')] : null,
      s.origin === 'paper' ? [' ', badge('纸质 Paper', 'paper')] : null),
    dl([
      s.origin === 'paper' ? ['来源 Origin', ['纸质反馈单，由 ', s.entered_by_name || userName(s.entered_by), ' 录入 · paper sheet entered by ', s.entered_by_name || userName(s.entered_by)]] : null,
      s.origin === 'paper' ? ['扫描件 Scan', scanLinks(s, (path) => pdf(null, path.replace('/api/v1/', '')))] : null,
      ['技术员 Technician', s.technician_name || userName(s.technician_id)],
      ['服务方式 Service mode', label('service_mode', s.service_mode)],
      ['签署时间 Signed', when(s.signed_at)],
      ['客户签名人 Signed by', s.signer_name],
      ['满意度 Rating', s.rating ? '★'.repeat(s.rating) + ` ${s.rating}/5` : '—'],
      s.absent_reason ? ['缺项说明 Absent reason', s.absent_reason] : null,
      s.returned_reason ? ['退回原因 Returned because', s.returned_reason] : null,
      s.exception_note ? ['例外说明 Exception note', s.exception_note] : null,
      s.coordinator_received_at ? ['接收 Received', `${when(s.coordinator_received_at)} · ${userName(s.coordinator_received_by)}`] : null,
    ]),
    sealed ? h('p', { class: 'links' },
      h('button', { type: 'button', class: 'link', onclick: (ev) => pdf(ev, 'sheets/' + enc(s.id) + '.pdf') }, bi('反馈单 PDF Sheet PDF')), ' · ',
      h('a', { href: '/verify/' + enc(s.id) + (s.fingerprint ? '?fp=' + enc(s.fingerprint) : ''), target: '_blank', rel: 'noopener' }, bi('公开验证页 Public verify page'))) : null,
    forms);
}

function sheetAction(s, action, text, params, reload, danger) {
  const box = errorBox();
  const form = h('form', { class: 'action inline', dataset: { sheetAction: action } },
    params.map(([name, l]) => field(l, h('input', { name, required: name === 'reason' || (name === 'note' && !s.absent_reason) }))),
    h('button', { type: 'submit', class: danger ? 'danger' : '' }, bi(text)), box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, String(v).trim()]).filter(([, v]) => v));
    await busy(form, async () => {
      try {
        await api.post(`sheets/${enc(s.id)}/actions/${action}`, body);
        reload(`${s.number}: ${text} ✓`);
      } catch (e) { showError(form, box, e); }
    });
  });
  return form;
}

// ---- complaints and follow-up calls ----

function complaintsSection(t, reload) {
  const role = me()?.role;
  const list = t.complaints || [];
  const box = errorBox();
  const form = h('form', { class: 'inline-form', dataset: { form: 'complaint' } },
    field('投诉内容 Complaint', h('textarea', { name: 'description', rows: 2, required: true })),
    field('涉及技术员 Technician', select('technician_id', [['', '— 无 None —'], ...technicians().map((u) => [u.id, u.name])], t.assignee_id || '')),
    h('button', { type: 'submit' }, bi('记录投诉 Record complaint')), box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const body = { description: String(fd.get('description')).trim() };
    if (fd.get('technician_id')) body.technician_id = fd.get('technician_id');
    await busy(form, async () => {
      try {
        await api.post(`tickets/${enc(t.id)}/complaints`, body);
        reload('投诉已记录 Complaint recorded');
      } catch (e) { showError(form, box, e); }
    });
  });
  const decide = (c, action) => async (ev) => {
    if (action === 'uphold' && ev.currentTarget) {
      // Upholding costs the technician the month's bonus: asked first.
      askFirst(ev.currentTarget, '认定投诉成立？将影响技术员当月奖金。 Uphold the complaint? It counts against the technician\'s bonus this month.',
        () => decide(c, 'confirmed-uphold')({}));
      return;
    }
    if (action === 'confirmed-uphold') action = 'uphold';
    try {
      await api.post(`complaints/${enc(c.id)}/actions/${action}`, {});
      reload(action === 'uphold' ? '投诉成立 Complaint upheld' : '投诉不成立 Complaint dismissed');
    } catch (e) { flash(e.message, 'err'); }
  };
  return h('section', { class: 'card', 'aria-labelledby': 'complaints-title' },
    h('h2', { id: 'complaints-title' }, bi('投诉 Complaints')),
    list.length === 0 ? h('p', { class: 'muted' }, '无投诉 No complaints') : h('ul', { class: 'plain items' }, list.map((c) => h('li', {},
      badge(label('complaint_status', c.status), c.status === 'upheld' ? 'danger' : ''), ' ', c.description,
      h('div', { class: 'ev-meta' }, when(c.received_at), ' · ', userName(c.technician_id)),
      c.status === 'open' && ['manager', 'admin'].includes(role) ? h('div', { class: 'row' },
        h('button', { type: 'button', class: 'uphold', onclick: decide(c, 'uphold') }, bi('成立 Uphold')), ' ',
        h('button', { type: 'button', onclick: decide(c, 'dismiss') }, bi('不成立 Dismiss'))) : null))),
    role === 'leader' ? null : form);
}

function followupsSection(t, reload) {
  const role = me()?.role;
  const list = t.followups || [];
  const box = errorBox();
  const form = h('form', { class: 'inline-form', dataset: { form: 'followup' } },
    field('回访结果 Outcome', select('outcome', state.meta.outcomes.map((o) => [o, label('outcome', o)]), 'satisfied')),
    field('备注 Notes', h('textarea', { name: 'notes', rows: 2 })),
    h('button', { type: 'submit' }, bi('记录回访 Log follow-up call')), box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    await busy(form, async () => {
      try {
        await api.post(`tickets/${enc(t.id)}/followups`, { outcome: fd.get('outcome'), notes: String(fd.get('notes')).trim() });
        reload('回访已记录 Follow-up logged');
      } catch (e) { showError(form, box, e); }
    });
  });
  const canLog = ['manager', 'coordinator', 'admin'].includes(role) && ['sheet_received', 'followed_up'].includes(t.status);
  return h('section', { class: 'card', 'aria-labelledby': 'followups-title' },
    h('h2', { id: 'followups-title' }, bi('电话回访 Follow-up calls')),
    list.length === 0 ? h('p', { class: 'muted' }, '尚未回访 No follow-up call yet') : h('ul', { class: 'plain items' }, list.map((f) => h('li', {},
      badge(label('outcome', f.outcome), f.outcome === 'satisfied' ? 'ok' : 'warn'), ' ', f.notes || '',
      h('div', { class: 'ev-meta' }, when(f.called_at), ' · ', userName(f.called_by))))),
    canLog ? form : h('p', { class: 'muted small' }, '收到反馈单后可回访 Calls are logged once the sheet is received'));
}
