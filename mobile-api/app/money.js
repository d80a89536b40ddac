// money.js: the technician's money screen (docs/money.md): ask the manager to approve a taxi
// or freight beforehand, record an expense (with the receipt's photo) against it, record a
// sale for a customer; and see one's own requests, expenses and sales with what is still
// owed. Everything is a mutation through fieldsync.js, so it works offline; the server
// decides (a taxi without an approved request is refused, and the refusal shows on the
// Sync screen).
import { newID } from './fieldsync.js';
import { t } from './i18n.js';
import { h, toast, fmtTime, yuan } from './ui.js';

/** fen reads an amount typed in yuan ("12", "12.5") as integer fen, exactly; null if not one. */
export function fen(text) {
  const m = /^\s*(\d{1,12})(?:\.(\d{1,2}))?\s*$/.exec(text || '');
  return m ? Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0')) : null;
}

const byNewest = (a, b) => ((b.data.created_at || '~') < (a.data.created_at || '~') ? -1 : 1);

/** The money screen; app gives fs, show, go and photoBytes (the receipt photo, scaled). */
export async function moneyScreen({ fs, show, go, photoBytes, maxBlob }) {
  const [approvals, expenses, sales, customers] = await Promise.all([fs.records('approval'), fs.records('expense'), fs.records('sale'), fs.records('customer')]);
  const status = (s) => t('mst_' + (s || 'pending'));
  const err = (id) => h('p', { class: 'error', role: 'alert', id });
  const kindSel = (id, kinds) => h('select', { id }, kinds.map((k) => h('option', { value: k }, t('mk_' + k))));
  const amount = (id) => h('input', { id, inputmode: 'decimal', placeholder: '0.00' });

  // Ask beforehand (P10).
  const reqKind = kindSel('req-kind', ['taxi', 'freight']);
  const reqAmount = amount('req-amount');
  const reqReason = h('textarea', { id: 'req-reason', rows: 2 });
  const reqErr = err('req-error');
  const request = h('form', { class: 'card', id: 'money-request', onsubmit: async (e) => {
    e.preventDefault();
    const v = fen(reqAmount.value);
    if (v === null || v === 0) { reqErr.textContent = t('amount_bad'); return; }
    if (!reqReason.value.trim()) { reqErr.textContent = t('reason_required'); return; }
    await fs.mutate('approval', newID(), 'create', 0, { kind: reqKind.value, amount_fen: v, reason: reqReason.value.trim() });
    toast(t('saved_offline'));
    go('#/money');
  } }, h('h2', {}, t('money_request')), h('label', {}, t('kind'), reqKind), h('label', {}, t('amount_yuan'), reqAmount),
  h('label', {}, t('reason'), reqReason), reqErr, h('button', { type: 'submit', class: 'primary' }, t('send_request')));

  // An expense, on an approved request where its kind needs one.
  const expKind = kindSel('exp-kind', ['public_transport', 'taxi', 'freight']);
  const approved = approvals.filter((a) => a.data.status === 'approved' && ['taxi', 'freight'].includes(a.data.kind));
  const expApproval = h('select', { id: 'exp-approval' }, h('option', { value: '' }, t('no_approval')),
    approved.map((a) => h('option', { value: a.id }, `${t('mk_' + a.data.kind)} ${yuan(a.data.amount_fen)} · ${a.data.reason}`)));
  const expAmount = amount('exp-amount');
  const receipt = h('input', { id: 'exp-receipt', type: 'file', accept: 'image/*', capture: 'environment' });
  const expErr = err('exp-error');
  const expense = h('form', { class: 'card', id: 'money-expense', onsubmit: async (e) => {
    e.preventDefault();
    const v = fen(expAmount.value);
    if (v === null || v === 0) { expErr.textContent = t('amount_bad'); return; }
    const fields = { kind: expKind.value, amount_fen: v };
    if (expApproval.value) fields.approval_id = expApproval.value;
    try {
      if (receipt.files[0]) fields.receipt_blob = await fs.putBlob(await photoBytes(receipt.files[0], maxBlob));
    } catch (x) {
      expErr.textContent = String(x.message || x);
      return;
    }
    await fs.mutate('expense', newID(), 'create', 0, fields);
    toast(t('saved_offline'));
    go('#/money');
  } }, h('h2', {}, t('money_expense')), h('label', {}, t('kind'), expKind), h('label', {}, t('approval'), expApproval),
  h('label', {}, t('amount_yuan'), expAmount), h('label', {}, t('receipt_photo'), receipt), expErr, h('button', { type: 'submit', class: 'primary' }, t('save_expense')));

  // A sale: parts or software, for a customer the phone holds, with its lines.
  const saleKind = kindSel('sale-kind', ['parts', 'software']);
  const saleCust = h('select', { id: 'sale-customer' }, customers.map((c) => h('option', { value: c.id }, c.data.name)));
  const lines = h('div', { id: 'sale-lines' });
  const addLine = () => lines.append(h('div', { class: 'sale-line' },
    h('input', { class: 'item', placeholder: t('item'), 'aria-label': t('item') }),
    h('input', { class: 'qty', inputmode: 'numeric', value: '1', size: 3, 'aria-label': t('qty') }),
    h('input', { class: 'price', inputmode: 'decimal', placeholder: t('price_yuan'), size: 8, 'aria-label': t('price_yuan') })));
  addLine();
  const saleErr = err('sale-error');
  const sale = h('form', { class: 'card', id: 'money-sale', onsubmit: async (e) => {
    e.preventDefault();
    const list = [];
    for (const row of lines.querySelectorAll('.sale-line')) {
      const item = row.querySelector('.item').value.trim();
      if (!item) continue;
      const qty = Number(row.querySelector('.qty').value);
      const price = fen(row.querySelector('.price').value);
      if (!Number.isInteger(qty) || qty < 1 || price === null) { saleErr.textContent = t('line_bad', item); return; }
      list.push({ item, qty, price_fen: price });
    }
    if (!list.length) { saleErr.textContent = t('lines_required'); return; }
    await fs.mutate('sale', newID(), 'create', 0, { kind: saleKind.value, customer_id: saleCust.value, lines: list });
    toast(t('saved_offline'));
    go('#/money');
  } }, h('h2', {}, t('money_sale')), h('label', {}, t('kind'), saleKind),
  customers.length ? h('label', {}, t('customer'), saleCust) : h('p', { class: 'notice' }, t('no_customers')),
  h('p', { class: 'muted small' }, t('sale_lines_hint')), lines,
  h('button', { type: 'button', class: 'link', onclick: addLine }, t('add_line')), saleErr,
  h('button', { type: 'submit', class: 'primary', disabled: !customers.length }, t('save_sale')));

  const mine = h('section', { class: 'card', id: 'money-mine' }, h('h2', {}, t('money_mine')),
    h('ul', { class: 'plain' },
      approvals.sort(byNewest).map((a) => h('li', { dataset: { id: a.id } }, `${t('mk_' + a.data.kind)} ${yuan(a.data.amount_fen)} · ${status(a.data.status)}`,
        a.pending ? ' · ' + t('not_sent') : '', a.data.decision_note ? ` · ${a.data.decision_note}` : '')),
      expenses.sort(byNewest).map((x) => h('li', { dataset: { id: x.id } }, `${t('mk_' + x.data.kind)} ${yuan(x.data.amount_fen)} · ${t('mst_' + (x.data.status || 'submitted'))}`,
        x.pending ? ' · ' + t('not_sent') : '')),
      sales.sort(byNewest).map((s) => h('li', { dataset: { id: s.id } }, `${t('mk_' + s.data.kind)} ${yuan(s.data.total_fen)} · ${t('paid')} ${yuan(s.data.paid_fen)}`,
        s.data.shipped_at ? ` · ${t('shipped')} ${fmtTime(s.data.shipped_at)}` : '', s.pending ? ' · ' + t('not_sent') : ''))));
  show(h('section', {}, mine, request, expense, sale));
}
