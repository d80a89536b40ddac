// paper.js: a paper feedback sheet. The customer signed and stamped the printed form, the
// technician handed it in; the coordinator uploads its scan, types what it says and ticks
// the signature and stamp seen on the paper. The server seals it at entry (origin paper).
import { api } from './api.js';
import { h, bi, errorBox, showError, field, select, busy } from './ui.js';
import { label } from './i18n.js';
import { state } from './state.js';

const enc = encodeURIComponent;

// The ticket states a paper sheet can be entered in (the server checks them too).
const OPEN_FOR_PAPER = ['dispatched', 'accepted', 'en_route', 'on_site', 'completed'];

// canEnterPaper says whether the paper form is offered: the right role, a ticket in a state
// that takes a sheet, and no sealed sheet on it yet.
export function canEnterPaper(t, role) {
  return ['coordinator', 'admin'].includes(role) && OPEN_FOR_PAPER.includes(t.status)
    && !(t.sheets || []).some((s) => s.seal && s.status !== 'void');
}

// localTime turns a datetime-local value (the browser's time) into RFC 3339, '' into null.
function localTime(v) {
  return v ? new Date(v).toISOString() : null;
}

export function paperSheetForm(t, reload) {
  const box = errorBox();
  const check = (name, text) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name }), ' ', bi(text));
  const ratings = [['', '— 未评 Not rated —'], ...[5, 4, 3, 2, 1].map((n) => [String(n), '★'.repeat(n) + ' ' + n])];
  const form = h('form', { class: 'paper-form', id: 'paper-form' },
    h('p', { class: 'muted' }, '按客户签字盖章的纸质反馈单录入，录入即封签并接收。 Type in the paper form the customer signed and stamped; it is sealed and received at entry.'),
    field('扫描件或照片 Scan or photo', h('input', { type: 'file', name: 'scan_blobs', multiple: true, required: true, accept: 'image/png,image/jpeg,image/webp,application/pdf' }),
      '每页一个文件，PNG、JPEG、WebP 或 PDF One file per page: PNG, JPEG, WebP or PDF'),
    h('fieldset', { class: 'checks' }, h('legend', {}, bi('纸上有 On the paper')),
      check('signature_present', '客户签字 Customer signature'), ' ',
      check('stamp_present', '客户盖章 Customer stamp'), ' ',
      check('technician_signature_present', '技术员签字 Technician signature')),
    field('客户签名人 Signed by', h('input', { name: 'signer_name' })),
    field('满意度 Rating', select('rating', ratings, '')),
    field('客户意见 Customer comment', h('input', { name: 'rating_comment' })),
    field('服务方式 Service mode', select('service_mode', state.meta.service_modes.map((m) => [m, label('service_mode', m)]), t.actual_service_mode || t.service_mode)),
    field('故障现象 Fault symptoms', h('textarea', { name: 'fault_symptoms', rows: 2 }, t.fault_symptoms || '')),
    field('检查记录 Inspection record', h('textarea', { name: 'inspection_record', rows: 2 })),
    field('处理结果 Handling result', h('textarea', { name: 'handling_result', rows: 2 })),
    field('到达时间 Arrived', h('input', { type: 'datetime-local', name: 'arrived_at' })),
    field('离开时间 Departed', h('input', { type: 'datetime-local', name: 'departed_at' }), '客户签字日期 the day the customer signed'),
    field('缺项说明 Why an item is missing', h('input', { name: 'absent_reason' })),
    box,
    h('button', { type: 'submit', class: 'primary' }, bi('录入并封签 Enter and seal')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    const fd = new FormData(form);
    await busy(form, async () => {
      try {
        const scans = [];
        for (const file of form.scan_blobs.files) {
          scans.push((await api.upload('blobs', file)).sha256);
        }
        const body = { scan_blobs: scans };
        for (const k of ['signature_present', 'stamp_present', 'technician_signature_present']) body[k] = fd.get(k) === 'on';
        for (const k of ['signer_name', 'rating_comment', 'service_mode', 'fault_symptoms', 'inspection_record', 'handling_result', 'absent_reason']) {
          const v = String(fd.get(k) || '').trim();
          if (v) body[k] = v;
        }
        if (fd.get('rating')) body.rating = Number(fd.get('rating'));
        for (const k of ['arrived_at', 'departed_at']) {
          const v = localTime(String(fd.get(k) || ''));
          if (v) body[k] = v;
        }
        const s = await api.post(`tickets/${enc(t.id)}/paper-sheet`, body);
        reload(`${s.number}: 纸质反馈单已录入并封签 Paper sheet entered and sealed` + (s.complete ? '' : ' · 不完整 incomplete'));
      } catch (e) {
        showError(form, box, e);
      }
    });
  });
  return h('details', { class: 'paper', id: 'paper-entry' },
    h('summary', {}, bi('录入纸质反馈单 Enter the paper sheet')), form);
}

// scanLinks lists a paper sheet's scan pages, each opened with the login's token.
export function scanLinks(s, open) {
  return h('span', { class: 'scans' }, (s.scan_blobs || []).map((sum, i) => [i ? ' · ' : '',
    h('button', { type: 'button', class: 'link scan-page', onclick: () => open('/api/v1/blobs/' + enc(sum)) }, `第 ${i + 1} 页 Page ${i + 1}`)]));
}

// lookupForm finds the ticket of a printed form: scan its QR code (a scanner types the
// number) or type the number printed under it.
export function lookupForm() {
  const box = errorBox();
  const input = h('input', { type: 'search', name: 'code', required: true, placeholder: 'SR-202611-0042', autocomplete: 'off' });
  const form = h('form', { class: 'lookup', id: 'lookup-form', role: 'search', 'aria-label': '按表单找工单 Find by form' },
    field('纸质表单 Paper form: 扫描二维码或输入单号 scan its QR code or type its number', input),
    h('button', { type: 'submit' }, bi('打开工单 Open ticket')), box);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    try {
      const t = await api.get('tickets/lookup?code=' + enc(input.value.trim()));
      location.hash = '#/tickets/' + enc(t.id) + '?paper=1';
    } catch (e) {
      showError(form, box, e);
    }
  });
  return form;
}
