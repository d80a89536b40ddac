// main.js: the field app's screens. Everything about the server goes through fieldsync.js;
// this file only draws and reacts. Routes are the URL's hash: #/ (tickets), #/t/{id},
// #/t/{id}/visit, #/t/{id}/sheet, #/status, #/money, #/month, #/report, #/login.
import { FieldSync, FieldSyncError, newID } from './fieldsync.js';
import { sheetCompleteness } from './completeness.js';
import { t, lang, setLang, setLabels, statusLabel, fieldLabel, explain } from './i18n.js';
import { h, toast, ask, fmtTime, yuan } from './ui.js';
import { moneyScreen } from './money.js';

const main = document.getElementById('main');
const bar = document.getElementById('bar');
const tabs = document.getElementById('tabs');

let meta = { steps: [], service_modes: ['onsite', 'phone', 'online'], sheet_requirable: [], sheet_required: [], blob_max_bytes: 5 << 20 };
let fs;
let current = null; // {route, refresh}

/**
 * Puts a screen's content in place. On a redraw of the same screen (new data arrived) the
 * fields marked data-keep keep what the technician was typing, in the same step as the
 * swap, so nothing typed in between is lost.
 */
let shownHash = '';
function show(...nodes) {
  const same = shownHash === location.hash;
  const kept = same ? [...main.querySelectorAll('[data-keep]')].map((el) => [el.id, el.value, el === document.activeElement, el.selectionStart]) : [];
  main.replaceChildren(...nodes);
  shownHash = location.hash;
  for (const [id, value, focused, pos] of kept) {
    const el = document.getElementById(id);
    if (!el) continue;
    el.value = value;
    if (focused) { el.focus(); try { el.setSelectionRange(pos, pos); } catch { /* not text */ } }
  }
}

// ---- the workflow, from the server's table ----

/** The steps a technician may take on ticket now, by the server's table and its mode rules. */
function allowedSteps(ticket) {
  const remote = ['phone', 'online'].includes(ticket.service_mode);
  return meta.steps.filter((s) => s.roles.includes('technician') && s.from.includes(ticket.status)).filter((s) => {
    if (s.action === 'en_route') return !remote;
    if ((s.action === 'start' || s.action === 'complete') && ticket.status === 'accepted') return remote;
    return true;
  });
}

/** What a pending action will probably do, so the work can go on offline; the server decides. */
function predict(entity, data, action) {
  if (entity === 'ticket') {
    const s = meta.steps.find((x) => x.action === action && x.from.includes(data.status));
    return s && s.to ? { ...data, status: s.to } : data;
  }
  if (entity === 'feedback_sheet' && action === 'sign' && (data.status || 'draft') === 'draft') return { ...data, status: 'signed' };
  return data;
}

// ---- data helpers ----

async function setting(key, fallback) {
  const r = await fs.record('setting', key);
  return r && r.data && r.data.value != null ? r.data.value : fallback;
}

/** The deadline that matters now and whether it has passed, as the server marks overdue. */
function deadline(tk) {
  const now = Date.now();
  let due = '';
  if (tk.status === 'dispatched') due = tk.due_response_at;
  else if (['accepted', 'en_route'].includes(tk.status) && tk.service_mode !== 'phone' && tk.service_mode !== 'online') due = tk.due_arrival_at;
  const overdue = !!due && new Date(due).getTime() < now;
  return { due, overdue };
}

async function sheetsOf(ticketID) {
  // Oldest first; a sheet made on the phone and not yet synced has no created_at: newest.
  const key = (s) => s.data.created_at || '~' + (s.data.device_created_at || s.id);
  return (await fs.records('feedback_sheet')).filter((s) => s.data.ticket_id === ticketID).sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

/** The sheet the technician works on: not void and not replaced by a correction. */
async function liveSheet(ticketID) {
  const all = await sheetsOf(ticketID);
  const replaced = new Set(all.map((s) => s.data.supersedes_id).filter(Boolean));
  return all.filter((s) => s.data.status !== 'void' && !s.data.superseded_by && !replaced.has(s.id)).pop() || null;
}

/** The final rejections about a ticket: of the ticket itself, its notes, and its sheets. */
async function ticketRejections(ticketID) {
  const sheets = new Set((await fs.records('feedback_sheet')).filter((x) => x.data.ticket_id === ticketID).map((x) => x.id));
  return (await fs.rejections()).filter((r) => r.id === ticketID || (r.fields && r.fields.ticket_id === ticketID) ||
    (r.entity === 'feedback_sheet' && (sheets.has(r.id) || r.record?.ticket_id === ticketID)));
}

// ---- chrome: top bar, tabs, sync chip ----

function drawBar(title, back) {
  const st = fs.state;
  const online = st.connected;
  bar.replaceChildren(
    back ? h('a', { href: back, class: 'back', 'aria-label': t('back') }, '‹') : h('span', { class: 'logo' }, '✓'),
    h('h1', {}, title),
    h('a', { href: '#/status', id: 'sync-chip', class: 'chip ' + (online ? 'on' : 'off') },
      online ? t('online') : t('offline'), st.pending ? ` · ${t('pending_n', st.pending)}` : ''));
}

function drawTabs(active) {
  const tab = (href, key, name) => h('a', { href, class: active === name ? 'active' : '' }, t(key));
  tabs.replaceChildren(tab('#/', 'tab_tickets', 'tickets'), tab('#/report', 'tab_report', 'report'),
    tab('#/money', 'tab_money', 'money'), tab('#/month', 'tab_month', 'month'), tab('#/status', 'tab_sync', 'status'));
}

// ---- screens ----

async function loginScreen() {
  bar.replaceChildren(h('span', { class: 'logo' }, '✓'), h('h1', {}, t('app_name')));
  tabs.replaceChildren();
  const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, value: fs.user?.username || '' });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'error', role: 'alert' });
  const work = await fs.localWork();
  const form = h('form', { class: 'card', id: 'login', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await fs.login(user.value.trim(), pass.value, navigator.userAgent.slice(0, 60));
      fs.start();
      go('#/');
    } catch (x) {
      err.textContent = x.code === 'outbox_not_empty' ? t('login_other_user', x.user) : explain(x);
    }
  } },
  h('label', {}, t('username'), user), h('label', {}, t('password'), pass), err,
  h('button', { type: 'submit', class: 'primary' }, t('login')));
  const notes = [];
  if (fs.state.stopped === 'unauthorized' || (fs.user && !fs.loggedIn)) notes.push(h('p', { class: 'notice' }, t('session_expired')));
  if (fs.state.stopped === 'revoked') notes.push(h('p', { class: 'notice' }, t('stopped_revoked')));
  if (work.outbox.length) {
    notes.push(h('p', { class: 'notice' }, t('work_kept', work.outbox.length), ' ', h('a', { href: '#/status' }, t('see_work'))));
  }
  const wrap = h('section', {}, notes, form, h('p', { class: 'muted small' }, t('lang_hint'), ' ',
    h('button', { type: 'button', class: 'link', onclick: () => { setLang(lang() === 'zh' ? 'en' : 'zh'); route(); } }, lang() === 'zh' ? 'English' : '中文')));
  try {
    const demo = await (await fetch('/api/v1/demo')).json();
    if (demo.demo) {
      wrap.append(h('aside', { class: 'card demo' }, h('h2', {}, t('demo_logins')),
        h('ul', { class: 'plain' }, demo.users.filter((u) => u.role === 'technician').map((u) => h('li', {},
          h('button', { type: 'button', class: 'link', onclick: () => { user.value = u.username; pass.value = demo.password; } }, `${u.username} · ${u.name}`))))));
    }
  } catch { /* not a demo server, or offline */ }
  show(wrap);
}

const FILTERS = ['open', 'today', 'sheet', 'all'];
let filter = 'open';
let search = '';

async function ticketsScreen() {
  drawBar(t('my_tickets'));
  drawTabs('tickets');
  const [tickets, customers, sheets] = await Promise.all([fs.records('ticket'), fs.records('customer'), fs.records('feedback_sheet')]);
  const me = fs.user?.id;
  const custName = new Map(customers.map((c) => [c.id, c.data.name]));
  const signed = new Set(sheets.filter((s) => ['signed', 'received'].includes(s.data.status)).map((s) => s.data.ticket_id));
  const today = new Date().toDateString();
  const mine = tickets.filter((tk) => !me || !tk.data.assignee_id || tk.data.assignee_id === me || tk.pending);
  const shown = mine.filter((tk) => {
    const d = tk.data;
    const open = ['dispatched', 'accepted', 'en_route', 'on_site'].includes(d.status);
    if (filter === 'open' && !open) return false;
    if (filter === 'sheet' && !(['on_site', 'completed'].includes(d.status) && !signed.has(tk.id))) return false;
    if (filter === 'today') {
      const { due, overdue } = deadline(d);
      if (!(open && (overdue || (due && new Date(due).toDateString() === today)))) return false;
    }
    if (search) {
      const hay = [d.number, custName.get(d.customer_id), d.fault_symptoms, d.address, d.contact_name].join(' ').toLowerCase();
      if (!hay.includes(search.toLowerCase())) return false;
    }
    return true;
  }).map((tk) => ({ tk, ...deadline(tk.data) }))
    .sort((a, b) => (a.due || '9999') < (b.due || '9999') ? -1 : (a.due || '9999') > (b.due || '9999') ? 1 : (a.tk.data.number < b.tk.data.number ? -1 : 1));
  const q = h('input', { id: 'search', type: 'search', placeholder: t('search'), value: search, 'data-keep': '1',
    oninput: (e) => { search = e.target.value; refreshSoon(); } });
  const seg = h('div', { class: 'seg', role: 'tablist' }, FILTERS.map((f) => h('button', { type: 'button', role: 'tab', class: filter === f ? 'active' : '', 'aria-selected': String(filter === f),
    onclick: () => { filter = f; route(); } }, t('filter_' + f))));
  const list = h('ul', { class: 'tickets', id: 'ticket-list' }, shown.map(({ tk, due, overdue }) => {
    const d = tk.data;
    return h('li', {}, h('a', { href: `#/t/${tk.id}`, class: 'ticket' + (overdue ? ' overdue' : ''), 'data-number': d.number || '', 'data-due': due || '' },
      h('div', { class: 'row' }, h('strong', {}, d.number || t('new_ticket')), h('span', { class: 'badge ' + (d.urgency || '') }, t('urgency_' + (d.urgency || 'normal'))),
        overdue ? h('span', { class: 'badge overdue' }, t('overdue')) : null, tk.pending ? h('span', { class: 'badge pending' }, t('not_synced')) : null),
      h('div', {}, custName.get(d.customer_id) || ''),
      h('div', { class: 'muted' }, d.fault_symptoms || ''),
      h('div', { class: 'row small' }, h('span', { class: 'status' }, statusLabel(d.status)), due ? h('span', {}, t('due'), ' ', fmtTime(due)) : null)));
  }));
  show(h('section', {}, q, seg, shown.length ? list : h('p', { class: 'muted', id: 'no-tickets' }, t('no_tickets'))));
}

async function ticketScreen(id) {
  const tk = await fs.record('ticket', id);
  drawTabs('tickets');
  if (!tk) {
    drawBar(t('ticket'), '#/');
    const rej = await ticketRejections(id);
    show(h('section', {}, h('p', { class: 'notice', id: 'ticket-gone' }, t('ticket_gone')), rejectionList(rej)));
    return;
  }
  const d = tk.data;
  drawBar(d.number || t('new_ticket'), '#/');
  const [cust, site, asset, events, sheet, rej] = await Promise.all([fs.record('customer', d.customer_id), fs.record('site', d.site_id),
    fs.record('asset', d.asset_id), fs.records('ticket_event'), liveSheet(id), ticketRejections(id)]);
  const phone = d.contact_phone || site?.data.contacts?.[0]?.phone || cust?.data.phone;
  const contact = d.contact_name || site?.data.contacts?.[0]?.name || '';
  const steps = allowedSteps(d);
  const mode = h('select', { id: 'complete-mode' }, meta.service_modes.map((m) => h('option', { value: m, selected: m === (d.service_mode || 'onsite') }, t('mode_' + m))));
  const note = h('textarea', { id: 'note', rows: 2, placeholder: t('note_placeholder'), 'data-keep': '1' });
  const evs = events.filter((e) => e.data.ticket_id === id).sort((a, b) => ((a.data.at || '') < (b.data.at || '') ? -1 : 1));
  const deadlineInfo = deadline(d);
  show(h('section', { class: 'detail' },
    rejectionList(rej),
    h('div', { class: 'card' },
      h('div', { class: 'row' }, h('span', { class: 'status', id: 'ticket-status' }, statusLabel(d.status)), tk.pending ? h('span', { class: 'badge pending' }, t('not_synced')) : null,
        deadlineInfo.overdue ? h('span', { class: 'badge overdue' }, t('overdue')) : null),
      dl([[t('customer'), cust?.data.name], [t('site'), site?.data.name], [t('address'), d.address || site?.data.address],
        [t('contact'), contact ? [contact, ' ', phone ? h('a', { href: 'tel:' + phone.replace(/[^0-9+]/g, ''), class: 'call' }, phone) : ''] : (phone ? h('a', { href: 'tel:' + phone, class: 'call' }, phone) : '')],
        [t('equipment'), asset ? `${asset.data.model || ''} ${asset.data.serial || ''}` : ''],
        [t('warranty'), [d.warranty ? t('warranty_' + d.warranty) : '', asset?.data.warranty_until ? ` (${t('until')} ${asset.data.warranty_until})` : '']],
        [t('fault'), d.fault_symptoms], [t('agreed_handling'), d.agreed_handling], [t('planned_mode'), d.service_mode ? t('mode_' + d.service_mode) : ''],
        [t('due'), deadlineInfo.due ? fmtTime(deadlineInfo.due) : '']])),
    steps.length ? h('div', { class: 'card steps', id: 'steps' }, h('h2', {}, t('next_step')),
      steps.some((s) => s.action === 'complete') ? h('label', {}, t('service_mode'), mode) : null,
      steps.map((s) => h('button', { type: 'button', class: 'primary big', 'data-action': s.action, onclick: async () => {
        const fields = s.action === 'complete' ? { service_mode: mode.value } : null;
        await fs.mutate('ticket', id, 'action', tk.version, fields, s.action);
        toast(t('saved_local'));
      } }, t('act_' + s.action)))) : null,
    d.status === 'dispatched' ? h('p', { class: 'muted small' }, t('accept_first')) : h('div', { class: 'card links' },
      h('a', { href: `#/t/${id}/visit`, class: 'button', id: 'to-visit' }, t('visit_record')),
      h('a', { href: `#/t/${id}/sheet`, class: 'button', id: 'to-sheet' }, t('feedback_sheet'), sheet ? ` · ${sheetStatus(sheet)}` : '')),
    h('div', { class: 'card' }, h('h2', {}, t('history')),
      h('ul', { class: 'events', id: 'events' }, evs.map((e) => h('li', {}, h('span', { class: 'muted small' }, fmtTime(e.data.at)), ' ',
        e.data.kind === 'action' ? t('act_' + e.data.action) : e.data.kind === 'orphaned_work' ? t('orphaned_work') : '', ' ', e.data.note || '',
        e.pending ? h('span', { class: 'badge pending' }, t('not_synced')) : null))),
      note, h('button', { type: 'button', id: 'add-note', onclick: async () => {
        if (!note.value.trim()) return;
        await fs.mutate('ticket_event', newID(), 'create', 0, { ticket_id: id, note: note.value.trim() });
        note.value = '';
        toast(t('saved_local'));
      } }, t('add_note')))));
}

function dl(pairs) {
  return h('dl', {}, pairs.filter(([, v]) => v && (!Array.isArray(v) || v.some(Boolean))).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function sheetStatus(s) {
  return t('sheet_' + (s.data.status || 'draft')) + (s.pending ? ' · ' + t('not_synced') : '');
}

/** Final rejections with what happened and what to do; each can be dismissed. */
function rejectionList(rej) {
  if (!rej.length) return null;
  return h('div', { class: 'card attention', id: 'rejections' }, h('h2', {}, t('needs_attention')), rej.map((r) => h('div', { class: 'rejection', 'data-code': r.code },
    h('p', {}, h('strong', {}, describeMutation(r)), ' — ', explain(r)),
    r.message ? h('p', { class: 'muted small' }, t('server_said'), ' ', r.message) : null,
    h('button', { type: 'button', class: 'secondary', onclick: () => fs.dismissRejection(r.mid) }, t('dismiss')))));
}

function describeMutation(m) {
  if (m.op === 'action') return t('act_' + m.action);
  if (m.entity === 'ticket_event') return t('a_note') + (m.fields?.note ? `「${m.fields.note}」` : '');
  if (m.entity === 'feedback_sheet') return t('feedback_sheet') + ' · ' + Object.keys(m.fields || {}).map(fieldLabel).join(', ');
  if (m.entity === 'ticket' && m.op === 'create') return t('fault_report') + (m.fields?.fault_symptoms ? `「${m.fields.fault_symptoms}」` : '');
  return `${m.entity} ${m.op} ` + Object.keys(m.fields || {}).map(fieldLabel).join(', ');
}

async function visitScreen(id) {
  const tk = await fs.record('ticket', id);
  drawTabs('tickets');
  drawBar(t('visit_record'), `#/t/${id}`);
  if (!tk) { show(h('p', { class: 'notice' }, t('ticket_gone'))); return; }
  const d = tk.data;
  const sheet = await liveSheet(id);
  const sd = sheet?.data || {};
  const sealed = sheet && sd.status !== 'draft';
  const insp = h('textarea', { id: 'inspection', rows: 4 }, sd.inspection_record || d.inspection_record || '');
  const result = h('textarea', { id: 'handling', rows: 4 }, sd.handling_result || d.handling_result || '');
  const modeNow = sd.service_mode || d.actual_service_mode || d.service_mode || 'onsite';
  const modes = h('div', { class: 'seg' }, meta.service_modes.map((m) => h('label', { class: 'radio' },
    h('input', { type: 'radio', name: 'mode', value: m, checked: m === modeNow }), t('mode_' + m))));
  const parts = h('div', { id: 'parts' });
  const addPart = (p = {}) => parts.append(h('fieldset', { class: 'part' },
    h('label', {}, t('part_item'), h('input', { name: 'item', value: p.item || '' })),
    h('label', {}, t('part_qty'), h('input', { name: 'quantity', type: 'number', min: 1, step: 1, inputmode: 'numeric', value: p.quantity || 1 })),
    h('label', {}, t('serial_removed'), h('input', { name: 'serial_removed', value: p.serial_removed || '' })),
    h('label', {}, t('serial_fitted'), h('input', { name: 'serial_fitted', value: p.serial_fitted || '' })),
    h('button', { type: 'button', class: 'link', onclick: (e) => e.target.closest('fieldset').remove() }, t('remove'))));
  for (const p of sd.parts || []) addPart(p);
  const err = h('p', { class: 'error', role: 'alert' });
  const save = async () => {
    err.textContent = '';
    const list = [...parts.querySelectorAll('fieldset')].map((f) => ({
      item: f.querySelector('[name=item]').value.trim(), quantity: parseInt(f.querySelector('[name=quantity]').value, 10),
      serial_removed: f.querySelector('[name=serial_removed]').value.trim(), serial_fitted: f.querySelector('[name=serial_fitted]').value.trim() }))
      .filter((p) => p.item || p.serial_removed || p.serial_fitted);
    for (const p of list) {
      if (!p.item) { err.textContent = t('part_needs_item'); return; }
      if (!(p.quantity >= 1)) { err.textContent = t('part_needs_qty'); return; }
    }
    const mode = modes.querySelector('input:checked')?.value || 'onsite';
    const ticketFields = {};
    if (insp.value !== (d.inspection_record || '')) ticketFields.inspection_record = insp.value;
    if (result.value !== (d.handling_result || '')) ticketFields.handling_result = result.value;
    if (Object.keys(ticketFields).length) await fs.mutate('ticket', id, 'update', tk.version, ticketFields);
    const sheetFields = { inspection_record: insp.value, handling_result: result.value, parts: list, service_mode: mode };
    // The arrival time of an on-site visit: the server's, or the time "arrived" was tapped here.
    const arrived = d.arrived_at || sd.arrived_at || (await fs.outbox()).find((m) => m.entity === 'ticket' && m.id === id && m.action === 'arrive')?.at;
    if (mode === 'onsite' && arrived) sheetFields.arrived_at = arrived;
    if (!sheet || sealed) {
      await fs.mutate('feedback_sheet', newID(), 'create', 0, { ticket_id: id, fault_symptoms: d.fault_symptoms || '', ...sheetFields,
        ...(sealed && ['signed', 'returned'].includes(sd.status) ? { supersedes_id: sheet.id } : {}) });
    } else {
      await fs.mutate('feedback_sheet', sheet.id, 'update', sheet.version, sheetFields);
    }
    toast(t('saved_local'));
    go(`#/t/${id}`);
  };
  show(h('form', { class: 'card', id: 'visit', onsubmit: (e) => { e.preventDefault(); save(); } },
    sealed ? h('p', { class: 'notice' }, t('sheet_sealed_new')) : null,
    h('label', {}, t('inspection_record'), insp), h('label', {}, t('handling_result'), result),
    h('h2', {}, t('parts')), parts, h('button', { type: 'button', id: 'add-part', class: 'secondary', onclick: () => addPart() }, t('add_part')),
    h('h2', {}, t('service_mode')), modes, err,
    h('button', { type: 'submit', class: 'primary big', id: 'save-visit' }, t('save'))));
}

// ---- the feedback sheet ----

/** A signature pad: draws with pointer events, exports PNG bytes. */
function signaturePad(id) {
  const canvas = h('canvas', { id, class: 'pad', width: 640, height: 260, 'aria-label': t('sign_here') });
  const ctx = canvas.getContext('2d');
  let drawing = false;
  let drawn = false;
  const clear = () => { ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height); drawn = false; };
  clear();
  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    drawing = true;
    canvas.setPointerCapture?.(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(...pos(e));
    e.preventDefault();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    ctx.lineWidth = 4; ctx.lineCap = 'round'; ctx.lineJoin = 'round'; ctx.strokeStyle = '#111';
    ctx.lineTo(...pos(e));
    ctx.stroke();
    drawn = true;
    e.preventDefault();
  });
  const end = () => { drawing = false; };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  return {
    canvas, clear, get drawn() { return drawn; },
    png: () => new Promise((resolve) => canvas.toBlob(async (b) => resolve(new Uint8Array(await b.arrayBuffer())), 'image/png')),
  };
}

/** A photo from the camera, scaled down on the phone: at most 1600 px on its longer side. */
async function stampBytes(file, max) {
  const raw = new Uint8Array(await file.arrayBuffer());
  const img = await createImageBitmap(file).catch(() => null);
  if (!img) throw new FieldSyncError('unsupported_media', 'not an image');
  const side = 1600;
  // Small enough already: keep the photo's own bytes (PNG, JPEG or WebP; the client checks).
  if (Math.max(img.width, img.height) <= side && raw.length <= Math.min(max, 1 << 20)) return raw;
  const k = Math.min(1, side / Math.max(img.width, img.height));
  const c = h('canvas', { width: Math.round(img.width * k), height: Math.round(img.height * k) });
  c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
  for (const q of [0.85, 0.7, 0.5]) {
    const b = await new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', q));
    const bytes = new Uint8Array(await b.arrayBuffer());
    if (bytes.length <= max) return bytes;
  }
  throw new FieldSyncError('too_large', 'still too large after scaling', { size: raw.length, max });
}

async function sheetScreen(id) {
  const tk = await fs.record('ticket', id);
  drawTabs('tickets');
  drawBar(t('feedback_sheet'), `#/t/${id}`);
  if (!tk) { show(h('p', { class: 'notice' }, t('ticket_gone'))); return; }
  const sheet = await liveSheet(id);
  if (!sheet) {
    show(h('section', {}, h('p', { class: 'notice' }, t('sheet_first_visit')),
      h('a', { class: 'button primary', href: `#/t/${id}/visit` }, t('visit_record'))));
    return;
  }
  const sd = sheet.data;
  const rej = rejectionList(await ticketRejections(id));
  if (sd.status && sd.status !== 'draft') return sealedSheet(tk, sheet, rej);
  const cust = await fs.record('customer', tk.data.customer_id);
  const required = await setting('sheet_required', meta.sheet_required);
  const maxBlob = await setting('blob_max_bytes', meta.blob_max_bytes);
  // Saves go one after another, and signing waits for them: a name typed just before tapping
  // "sign" is in the outbox before the sign.
  let saving = Promise.resolve();
  const saveFields = (fields) => {
    saving = saving.then(async () => {
      const cur = await fs.record('feedback_sheet', sheet.id);
      await fs.mutate('feedback_sheet', sheet.id, 'update', cur?.version || 0, fields);
      toast(t('saved_local'));
    });
    return saving;
  };
  const err = h('p', { class: 'error', role: 'alert', id: 'sheet-error' });
  const missingBox = h('div', { id: 'completeness', class: 'card', 'aria-live': 'polite' });
  const refreshCompleteness = async () => {
    const cur = await fs.record('feedback_sheet', sheet.id);
    const { complete, missing } = sheetCompleteness(cur?.data || {}, required, meta.sheet_requirable);
    missingBox.className = 'card ' + (complete ? 'complete' : 'missing');
    missingBox.replaceChildren(complete ? t('sheet_complete') : t('missing_items', missing.map(fieldLabel).join(' / ')));
    return { complete, missing };
  };
  const stars = h('div', { class: 'stars', id: 'rating', role: 'radiogroup', 'aria-label': t('rating') }, [1, 2, 3, 4, 5].map((n) =>
    h('button', { type: 'button', role: 'radio', 'aria-checked': String(sd.rating === n), class: sd.rating >= n ? 'on' : '', 'data-rating': n,
      onclick: async (e) => {
        for (const b of stars.children) { b.className = Number(b.dataset.rating) <= n ? 'on' : ''; b.setAttribute('aria-checked', String(Number(b.dataset.rating) === n)); }
        await saveFields({ rating: n });
        refreshCompleteness();
        void e;
      } }, '★')));
  const text = (name, rows, attrs = {}) => h(rows ? 'textarea' : 'input', { id: 'f-' + name, name, rows, ...attrs,
    value: rows ? undefined : (sd[name] || ''), onchange: async (e) => { await saveFields({ [name]: e.target.value }); refreshCompleteness(); } },
  rows ? (sd[name] || '') : undefined);
  const imageField = (field, label) => {
    const has = !!sd[field];
    return h('p', { class: 'small ' + (has ? 'ok' : 'muted'), id: 'has-' + field }, has ? '✓ ' + t('image_saved') : label);
  };
  const pad = signaturePad('signature');
  const techPad = signaturePad('tech-signature');
  const savePad = (p, field) => async () => {
    err.textContent = '';
    if (!p.drawn) { err.textContent = t('draw_first'); return; }
    try {
      const sha = await fs.putBlob(await p.png());
      await saveFields({ [field]: sha });
      document.getElementById('has-' + field)?.replaceWith(h('p', { class: 'small ok', id: 'has-' + field }, '✓ ' + t('image_saved')));
      refreshCompleteness();
    } catch (x) { err.textContent = explain(x); }
  };
  const stamp = h('input', { id: 'stamp', type: 'file', accept: 'image/*', capture: 'environment', onchange: async (e) => {
    err.textContent = '';
    const file = e.target.files[0];
    if (!file) return;
    try {
      const sha = await fs.putBlob(await stampBytes(file, maxBlob));
      await saveFields({ stamp_blob: sha });
      document.getElementById('has-stamp_blob')?.replaceWith(h('p', { class: 'small ok', id: 'has-stamp_blob' }, '✓ ' + t('image_saved')));
      refreshCompleteness();
    } catch (x) { err.textContent = explain(x); e.target.value = ''; }
  } });
  const parts = (sd.parts || []).map((p) => `${p.item} ×${p.quantity}` + (p.serial_removed || p.serial_fitted ? ` (${p.serial_removed || '—'} → ${p.serial_fitted || '—'})` : ''));
  show(h('section', { class: 'sheet' }, rej,
    h('div', { class: 'card summary', id: 'summary' }, h('h2', {}, t('summary_for_customer')),
      dl([[t('customer'), cust?.data.name], [t('ticket'), tk.data.number], [t('fault'), sd.fault_symptoms], [t('inspection_record'), sd.inspection_record],
        [t('handling_result'), sd.handling_result], [t('parts'), parts.length ? h('ul', { class: 'plain' }, parts.map((p) => h('li', {}, p))) : ''],
        [t('service_mode'), sd.service_mode ? t('mode_' + sd.service_mode) : '']])),
    missingBox,
    h('div', { class: 'card' },
      h('h2', {}, t('rating')), stars,
      h('label', {}, t('rating_comment'), text('rating_comment', 2)),
      h('label', {}, t('signer_name'), text('signer_name', 0, { autocomplete: 'off' })),
      h('h2', {}, t('customer_signature')), imageField('signature_blob', t('sign_here')), pad.canvas,
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'secondary', onclick: pad.clear }, t('clear')),
        h('button', { type: 'button', class: 'primary', id: 'save-signature', onclick: savePad(pad, 'signature_blob') }, t('save_signature'))),
      h('h2', {}, t('company_stamp')), imageField('stamp_blob', t('stamp_hint')), h('label', { class: 'button secondary file' }, t('take_photo'), stamp),
      h('h2', {}, t('technician_signature')), imageField('technician_signature_blob', t('sign_here')), techPad.canvas,
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'secondary', onclick: techPad.clear }, t('clear')),
        h('button', { type: 'button', class: 'primary', id: 'save-tech-signature', onclick: savePad(techPad, 'technician_signature_blob') }, t('save_signature'))),
      h('details', {}, h('summary', {}, t('customer_absent')), h('label', {}, t('absent_reason'), text('absent_reason', 2))),
      err,
      h('button', { type: 'button', class: 'primary big', id: 'sign-sheet', onclick: async () => {
        await saving;
        const now = await fs.record('feedback_sheet', sheet.id);
        if (now?.data.arrived_at && !now.data.departed_at) {
          // Leaving when the customer signs; never before the recorded arrival.
          const at = new Date(Math.max(Date.now(), new Date(now.data.arrived_at).getTime())).toISOString();
          await saveFields({ departed_at: at });
        }
        const { complete, missing } = await refreshCompleteness();
        if (!complete) {
          const ok = await ask(t('sign_incomplete_title'), h('p', {}, t('missing_items', missing.map(fieldLabel).join(' / '))), t('sign_anyway'), t('go_back'));
          if (!ok) return;
        }
        await fs.signSheet(sheet.id); // signed on this phone, offline, as the customer signs
        toast(t('saved_local'));
        route();
      } }, t('sign_sheet')))));
  refreshCompleteness();
}

async function sealedSheet(tk, sheet, rej) {
  const sd = sheet.data;
  const id = tk.id;
  const pdf = h('button', { type: 'button', class: 'secondary', id: 'open-pdf', onclick: async () => {
    try {
      const res = await fs.fetch(`/mobile/v1/sheets/${sheet.id}.pdf`);
      const url = URL.createObjectURL(await res.blob());
      window.open(url, '_blank') || (location.href = url);
    } catch (x) { toast(explain(x), 'bad'); }
  } }, t('open_pdf'));
  const sealed = !!sd.seal;
  show(h('section', { class: 'sheet' }, rej, h('div', { class: 'card ' + (sd.status === 'returned' ? 'attention' : 'complete'), id: 'sealed' },
    h('h2', {}, sealed ? t('sheet_sealed', sd.number || '') : t('sheet_signed_waiting')),
    dl([[t('status'), sheetStatus(sheet)], [t('signed_at'), fmtTime(sd.signed_at)], [t('received_at'), fmtTime(sd.received_at)],
      [t('completeness'), sd.complete ? t('sheet_complete') : (sd.missing?.length ? t('missing_items', sd.missing.map(fieldLabel).join(' / ')) : '')]]),
    sd.status === 'returned' ? h('p', { class: 'notice', id: 'returned-reason' }, t('returned_reason'), ' ', sd.returned_reason || '') : null,
    sd.status === 'returned' ? h('button', { type: 'button', class: 'primary big', id: 'correct-sheet', onclick: async () => {
      const copy = {};
      for (const k of ['service_mode', 'arrived_at', 'departed_at', 'fault_symptoms', 'inspection_record', 'handling_result', 'parts', 'labour_fen', 'parts_fen', 'shipping_fen',
        'rating', 'rating_comment', 'signer_name', 'signature_blob', 'stamp_blob', 'technician_signature_blob', 'absent_reason', 'location']) if (sd[k] != null && sd[k] !== '') copy[k] = sd[k];
      await fs.mutate('feedback_sheet', newID(), 'create', 0, { ticket_id: id, supersedes_id: sheet.id, ...copy });
      toast(t('saved_local'));
      route();
    } }, t('correct_sheet')) : null,
    sealed ? h('div', { class: 'row' }, pdf, h('a', { class: 'button secondary', href: `/verify/${sheet.id}`, target: '_blank', rel: 'noopener' }, t('verify_link'))) : null)));
}

async function statusScreen() {
  drawBar(t('sync_status'));
  drawTabs('status');
  const st = fs.state;
  const work = await fs.localWork();
  const rej = await fs.rejections();
  const verifyOut = h('p', { id: 'verify-result', class: 'small' });
  show(h('section', {},
    h('div', { class: 'card', id: 'sync-state' }, dl([
      [t('connection'), st.connected ? `${t('online')} (${st.transport})` : t('offline')],
      [t('pending'), String(st.pending)],
      [t('last_sync'), st.lastSync ? fmtTime(st.lastSync) : t('never')],
      [t('user'), fs.user ? `${fs.user.name || ''} (${fs.user.username || ''})` : ''],
      [t('device'), fs.deviceID],
      [t('last_error'), st.stopped ? t('stopped_' + st.stopped) : st.lastError]])),
    rejectionList(rej),
    work.outbox.length ? h('div', { class: 'card' }, h('h2', {}, t('waiting_to_send')),
      h('ul', { class: 'plain', id: 'outbox' }, work.outbox.map((m) => h('li', {}, describeMutation(m), m.last_error ? h('span', { class: 'muted small' }, ` (${m.last_error})`) : null)))) : null,
    h('div', { class: 'card' },
      h('button', { type: 'button', class: 'secondary', id: 'verify', onclick: async () => {
        try {
          const v = await fs.verify();
          verifyOut.textContent = v.ok ? t('verify_ok', v.local.count) : t('verify_bad');
          verifyOut.dataset.ok = String(v.ok);
        } catch (x) { verifyOut.textContent = explain(x); }
      } }, t('verify')), verifyOut,
      h('button', { type: 'button', class: 'danger', id: 'sign-out', onclick: signOut }, t('sign_out')),
      st.stopped === 'unauthorized' ? h('a', { class: 'button primary', href: '#/login' }, t('login')) : null)));
}

async function signOut() {
  const work = await fs.localWork();
  if (work.outbox.length || work.blobs.length) {
    const ok = await ask(t('sign_out_title'), h('div', {}, h('p', {}, t('sign_out_loses')),
      h('ul', { class: 'lost' }, work.outbox.map((m) => h('li', {}, describeMutation(m))),
        work.blobs.length ? h('li', {}, t('images_n', work.blobs.length)) : null)), t('sign_out_anyway'), t('keep_work'));
    if (!ok) return;
  }
  await fs.signOut(true);
  go('#/login');
}

async function monthScreen() {
  drawBar(t('my_month'));
  drawTabs('month');
  const now = new Date();
  const def = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}`;
  const pick = h('input', { type: 'month', id: 'month', value: def, onchange: () => load() });
  const out = h('div', { id: 'month-row' });
  const load = async () => {
    out.replaceChildren(h('p', { class: 'muted' }, '…'));
    try {
      const m = await fs.getJSON(`/mobile/v1/months/${pick.value}/me`);
      const r = m.row || {};
      out.replaceChildren(h('div', { class: 'card' }, dl([[t('month_status'), t('month_' + m.status)],
        [t('counted_services'), String(r.counted_services ?? 0)], [t('excluded_services'), String(r.excluded_services ?? 0)],
        [t('complaints'), String(r.complaints ?? 0)], [t('allowance'), yuan(r.allowance_fen)], [t('bonus'), yuan(r.bonus_fen)],
        [t('labour'), yuan(r.labour_fen)], [t('total'), yuan(r.total_fen)], [t('average_rating'), r.average_rating ? String(r.average_rating) : '']]),
      (r.excluded || []).length ? h('ul', { class: 'plain small' }, r.excluded.map((x) => h('li', {}, `${x.ticket_number}: ${x.reason}`))) : null));
    } catch (x) {
      out.replaceChildren(h('p', { class: 'notice' }, x.code === 'not_found' ? t('month_none') : explain(x)));
    }
  };
  show(h('section', {}, h('label', {}, t('month'), pick), out));
  load();
}

async function reportScreen() {
  drawBar(t('fault_report'));
  drawTabs('report');
  const [customers, sites] = await Promise.all([fs.records('customer'), fs.records('site')]);
  const cust = h('select', { id: 'report-customer', onchange: () => fillSites() }, customers.map((c) => h('option', { value: c.id }, c.data.name)));
  const site = h('select', { id: 'report-site' });
  const fillSites = () => site.replaceChildren(...sites.filter((s) => s.data.customer_id === cust.value).map((s) => h('option', { value: s.id }, s.data.name)));
  fillSites();
  const symptoms = h('textarea', { id: 'report-symptoms', rows: 4 });
  const err = h('p', { class: 'error', role: 'alert' });
  show(h('form', { class: 'card', id: 'report', onsubmit: async (e) => {
    e.preventDefault();
    if (!symptoms.value.trim()) { err.textContent = t('symptoms_required'); return; }
    await fs.mutate('ticket', newID(), 'create', 0, { customer_id: cust.value, site_id: site.value, fault_symptoms: symptoms.value.trim() });
    toast(t('report_saved'));
    go('#/');
  } }, h('p', { class: 'muted small' }, t('report_hint')),
  customers.length ? [h('label', {}, t('customer'), cust), h('label', {}, t('site'), site)] : h('p', { class: 'notice' }, t('no_customers')),
  h('label', {}, t('fault'), symptoms), err, h('button', { type: 'submit', class: 'primary big', disabled: !customers.length }, t('send_report'))));
}

// ---- routing ----

function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

// Screens draw one at a time: a redraw of the list never lands over the screen opened after it.
let drawing = Promise.resolve();
function route() {
  drawing = drawing.then(routeNow).catch((e) => toast(String(e && e.message || e), 'bad'));
  return drawing;
}

async function routeNow() {
  const hash = location.hash || '#/';
  if ((!fs.loggedIn || fs.state.stopped === 'unauthorized') && !(hash === '#/status' && fs.user)) {
    current = { hash: '#/login', live: false };
    return loginScreen();
  }
  const m = hash.match(/^#\/t\/([^/]+)(?:\/(visit|sheet))?$/);
  let screen;
  if (m && m[2] === 'visit') screen = { fn: () => visitScreen(m[1]), live: false };
  else if (m && m[2] === 'sheet') screen = { fn: () => sheetScreen(m[1]), live: 'sheet' };
  else if (m) screen = { fn: () => ticketScreen(m[1]), live: true };
  else if (hash === '#/status') screen = { fn: statusScreen, live: true };
  else if (hash === '#/month') screen = { fn: monthScreen, live: false };
  else if (hash === '#/report') screen = { fn: reportScreen, live: false };
  else if (hash === '#/money') screen = { fn: () => { drawBar(t('tab_money')); drawTabs('money'); return moneyScreen({ fs, show, go, photoBytes: stampBytes, maxBlob: meta.blob_max_bytes }); }, live: false };
  else screen = { fn: ticketsScreen, live: true };
  current = { hash, ...screen };
  await screen.fn();
  main.dataset.screen = hash;
}

/** Re-draws a live screen after data changed, keeping what the technician was typing. */
let refreshTimer = 0;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { drawing = drawing.then(refreshNow).catch(() => {}); }, 60);
}

async function refreshNow() {
  {
    if (!current) return;
    if (current.live === true) {
      await current.fn();
    } else if (current.live === 'sheet') {
      // The sheet's form stays as typed; only a status change (sealed, returned) redraws it.
      const id = current.hash.split('/')[2];
      const s = await liveSheet(id);
      const shown = main.querySelector('#sealed') ? 'sealed' : main.querySelector('#sign-sheet') ? 'draft' : 'none';
      const now = !s ? 'none' : s.data.status && s.data.status !== 'draft' ? 'sealed' : 'draft';
      if (shown !== now || (now === 'sealed' && main.querySelector('#sealed')?.dataset.v !== String(s.version))) {
        await current.fn();
        main.querySelector('#sealed')?.setAttribute('data-v', String(s?.version));
      }
    }
    if (fs.loggedIn && location.hash !== '#/login') {
      const chip = document.getElementById('sync-chip');
      if (chip) {
        const st = fs.state;
        chip.className = 'chip ' + (st.connected ? 'on' : 'off');
        chip.textContent = (st.connected ? t('online') : t('offline')) + (st.pending ? ` · ${t('pending_n', st.pending)}` : '');
      }
    }
  }
}

// ---- service worker: offline start and "new version, reload" ----

function registerWorker() {
  if (!('serviceWorker' in navigator)) return; // e.g. WeChat on iOS: works while the page is open
  navigator.serviceWorker.register('sw.js').then((reg) => {
    const offer = (w) => {
      if (!w || !navigator.serviceWorker.controller) return;
      const b = h('div', { class: 'update', id: 'update' }, t('new_version'), ' ',
        h('button', { type: 'button', class: 'primary', onclick: () => w.postMessage('skipWaiting') }, t('reload')));
      document.getElementById('update')?.remove();
      document.body.append(b);
    };
    if (reg.waiting) offer(reg.waiting);
    reg.addEventListener('updatefound', () => {
      const w = reg.installing;
      w?.addEventListener('statechange', () => { if (w.state === 'installed') offer(w); });
    });
    setInterval(() => reg.update().catch(() => {}), 30 * 60000);
  }).catch(() => { /* no worker: the app still runs while open */ });
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (reloading || !document.getElementById('update')) return;
    reloading = true;
    location.reload();
  });
}

async function boot() {
  document.documentElement.lang = lang() === 'zh' ? 'zh-CN' : 'en';
  try {
    meta = await (await fetch('meta.json')).json();
    setLabels(meta);
  } catch { /* the worker's cache has it; without either the defaults above stand */ }
  fs = new FieldSync({ predict, appVersion: 'web-1' });
  await fs.open();
  globalThis.fieldsync = fs; // for the browser tests and for support
  fs.addEventListener('change', refreshSoon);
  fs.addEventListener('state', (e) => {
    refreshSoon();
    if (['unauthorized', 'revoked'].includes(e.detail.stopped) && !document.getElementById('login')) route();
  });
  fs.addEventListener('rejected', (e) => toast(describeMutation(e.detail) + ' — ' + explain(e.detail), 'bad'));
  window.addEventListener('hashchange', route);
  registerWorker();
  if (fs.loggedIn) fs.start();
  await route();
}

boot().catch((e) => { show(h('p', { class: 'error' }, String(e && e.message || e))); });
