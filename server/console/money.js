// money.js: the money pages of docs/money.md: the approval queues (the manager's and
// leadership's), sales with the receivables and their ageing, repairs sent back, and
// expenses. Every step is one POST to the record's action; the server checks who may take
// it and says why not.
import { api } from './api.js';
import { h, bi, flash, errorBox, showError, field, select, badge, busy } from './ui.js';
import { label, when, yuan } from './i18n.js';
import { me, state, userName, customerNames, customerName } from './state.js';

const enc = encodeURIComponent;

const L = {
  kind: {
    taxi: '出租车 Taxi', freight: '货运 Freight', credit: '赊销 Credit', software_charge: '软件收费 Software charge',
    public_transport: '公共交通 Public transport', other: '其他 Other', parts: '配件 Parts', software: '软件服务 Software',
  },
  status: {
    pending: '待审批 Pending', approved: '已批准 Approved', declined: '已拒绝 Declined',
    submitted: '待报销 Submitted', reimbursed: '已报销 Reimbursed', refused: '不予报销 Refused',
    reported: '待答复 Reported', manufacturer: '厂家上门 Manufacturer on site', answered: '待报价 To quote',
    quoted: '待客户确认 Quoted', confirmed: '客户已确认 Confirmed', shipped: '已寄回 Shipped', received: '商务部已收 Received',
    repaired: '已修复 Repaired', returned: '已返还 Returned',
  },
  action: {
    approve: '批准 Approve', decline: '拒绝 Decline', reimburse: '报销 Reimburse', refuse: '不予报销 Refuse',
    pay: '收款 Payment', ship: '发货 Ship', invoice: '已开票 Invoice issued', cost: '成本 Cost',
    answer_warranty: '保修答复 Warranty answer', quote: '报价 Quote', confirm: '客户确认 Customer confirmed',
    receive: '商务部收货 Receive', repaired: '已修复 Repaired', return: '返还客户 Return',
  },
};
const lab = (kind, v) => L[kind]?.[v] ?? (v || '—');

// fen reads an amount typed in yuan ("12", "12.5", "12.50") as integer fen, exactly; null
// when it is not an amount.
export function fen(text) {
  const m = /^\s*(\d{1,12})(?:\.(\d{1,2}))?\s*$/.exec(text || '');
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

// The steps and when each applies, here only to show the forms a role can use; who may take
// a step comes from the server's own table (meta.json's money_steps, schema.MoneySteps), and
// the server decides.
const ENTITY = { approvals: 'approval', expenses: 'expense', sales: 'sale', repairs: 'repair' };
function mayTake(collection, action, role) {
  if (action === 'cost') return ['commerce', 'coordinator', 'manager', 'leader', 'admin'].includes(role); // an edit of cost_fen
  const s = (state.meta?.money_steps || []).find((x) => x.entity === ENTITY[collection] && x.action === action);
  return !!s && s.roles.includes(role);
}
const STEPS = {
  approvals: [
    { action: 'approve', when: (r) => r.status === 'pending' && me()?.role === r.decider_role, inputs: [['note', '意见 Note']] },
    { action: 'decline', when: (r) => r.status === 'pending' && me()?.role === r.decider_role, inputs: [['note', '原因 Reason', true]], danger: true },
  ],
  expenses: [
    { action: 'reimburse', when: (r) => r.status === 'submitted' },
    { action: 'refuse', when: (r) => r.status === 'submitted', inputs: [['note', '原因 Reason', true]], danger: true },
  ],
  sales: [
    { action: 'cost', when: (r) => r.kind === 'parts' && !r.collected_at, inputs: [['cost_fen', '成本（元） Cost (yuan)', true, 'money']] },
    { action: 'pay', when: (r) => Number(r.paid_fen) < Number(r.total_fen), inputs: [['amount_fen', '金额（元） Amount (yuan)', true, 'money']] },
    { action: 'ship', when: (r) => !r.shipped_at, inputs: [['credit_approval_id', '赊销审批（欠款时） Credit approval (if owed)']] },
    { action: 'invoice', when: (r) => !r.invoice_issued_at },
    { action: 'charge_liability', when: (r) => r.shipped_at && Number(r.paid_fen) < Number(r.total_fen) && !r.liability_at, inputs: [['share_pct', '承担比例（%） Share (%)', true, 'int']], danger: true },
  ],
  repairs: [
    { action: 'answer_warranty', when: (r) => r.status === 'reported', inputs: [['in_warranty', '保修期内 In warranty', false, 'bool'], ['manufacturer_onsite', '厂家上门服务 Manufacturer on site', false, 'bool']] },
    { action: 'quote', when: (r) => r.status === 'answered', inputs: [['repair_fen', '维修费（元） Repair (yuan)', true, 'money'], ['shipping_fen', '运费（元） Shipping (yuan)', true, 'money']] },
    { action: 'confirm', when: (r) => r.status === 'quoted', inputs: [['confirmed_by', '客户确认人 Confirmed by', true]] },
    { action: 'ship', when: (r) => r.status === 'confirmed' },
    { action: 'receive', when: (r) => r.status === 'shipped' },
    { action: 'repaired', when: (r) => r.status === 'received' },
    { action: 'return', when: (r) => r.status === 'repaired' },
    { action: 'pay', when: (r) => ['confirmed', 'shipped', 'received', 'repaired', 'returned'].includes(r.status) && Number(r.paid_fen) < Number(r.quote_fen), inputs: [['amount_fen', '金额（元） Amount (yuan)', true, 'money']] },
  ],
};

// actionForms are the steps the logged-in role may take on record r of the collection.
function actionForms(collection, r, reload) {
  const role = me()?.role;
  return STEPS[collection].filter((s) => mayTake(collection, s.action, role) && s.when(r)).map((s) => {
    const box = errorBox();
    const inputs = (s.inputs || []).map(([name, text, required, type]) => {
      const input = type === 'bool' ? h('input', { type: 'checkbox', name }) : h('input', { name, required: !!required, size: type === 'money' ? 8 : (type === 'int' ? 4 : 14), inputmode: type === 'money' ? 'decimal' : (type === 'int' ? 'numeric' : null) });
      input.dataset.type = type || 'text';
      return field(text, input);
    });
    const form = h('form', { class: 'money-step', dataset: { action: s.action } }, inputs,
      h('button', { type: 'submit', class: s.danger ? 'danger' : 'primary' }, bi(lab('action', s.action))), box);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(form, async () => {
        showError(form, box, null);
        const body = {};
        for (const el of form.querySelectorAll('input')) {
          if (el.dataset.type === 'bool') body[el.name] = el.checked;
          else if (el.dataset.type === 'money') {
            const v = fen(el.value);
            if (v === null) {
              showError(form, box, { message: `金额格式不对 ${el.name}: "${el.value}" is not an amount in yuan (e.g. 12.50)`, field: el.name });
              return;
            }
            body[el.name] = v;
          } else if (el.dataset.type === 'int') {
            if (!/^\d{1,3}$/.test(el.value.trim())) {
              showError(form, box, { message: `请填整数 ${el.name} must be a whole number`, field: el.name });
              return;
            }
            body[el.name] = Number(el.value.trim());
          } else if (el.value.trim() !== '') body[el.name] = el.value.trim();
        }
        try {
          if (s.action === 'cost') await api.patch(`${collection}/${enc(r.id)}`, body, r.version);
          else await api.post(`${collection}/${enc(r.id)}/actions/${s.action}`, body);
          flash(lab('action', s.action) + ' ✓');
          reload();
        } catch (e) {
          showError(form, box, e);
        }
      });
    });
    return form;
  });
}

function tabs(current) {
  return h('nav', { class: 'tabs', 'aria-label': '款项 Money' }, [
    ['approvals', '审批 Approvals'], ['sales', '销售与应收 Sales & receivables'], ['repairs', '返修 Repairs'], ['expenses', '费用 Expenses'],
  ].map(([k, t]) => h('a', { href: '#/money/' + k, 'aria-current': k === current ? 'page' : null }, bi(t))));
}

function table(cols, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'money' },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, bi(c))))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, bi('没有记录 Nothing here'))))));
}

const num = (v) => h('td', { class: 'num' }, v);

export async function moneyPage(which, query) {
  which = ['approvals', 'sales', 'repairs', 'expenses'].includes(which) ? which : 'approvals';
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const page = await { approvals: approvalsPage, sales: salesPage, repairs: repairsPage, expenses: expensesPage }[which](query, reload);
  document.title = '款项 Money · fieldsync';
  return h('section', { id: 'money-' + which }, h('div', { class: 'page-head' }, h('h1', {}, bi('款项 Money'))), tabs(which), page);
}

// filters is a small form of selects that puts its values in the page's hash.
function filters(which, query, defs) {
  const f = h('form', { class: 'filters' }, defs.map(([name, text, options]) => field(text, select(name, options, query.get(name) ?? options[0][0]))),
    h('button', { type: 'submit' }, bi('筛选 Filter')));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [name] of defs) if (f[name].value) q.set(name, f[name].value);
    location.hash = `#/money/${which}?${q}`;
  });
  return f;
}

function params(query, defs) {
  const q = new URLSearchParams();
  for (const [name, , options] of defs) {
    const v = query.get(name) ?? options[0][0];
    if (v) q.set(name, v);
  }
  return q;
}

async function approvalsPage(query, reload) {
  const role = me()?.role;
  const defs = [
    ['status', '状态 Status', [['pending', '待审批 Pending'], ['approved', '已批准 Approved'], ['declined', '已拒绝 Declined'], ['', '全部 All']]],
    ['decider_role', '审批人 Decided by', role === 'leader'
      ? [['leader', '企业领导 Leadership'], ['manager', '部门经理 Manager'], ['', '全部 All']]
      : [['manager', '部门经理 Manager'], ['leader', '企业领导 Leadership'], ['', '全部 All']]],
  ];
  if (role !== 'manager' && role !== 'leader') defs[1][2] = [['', '全部 All'], ['manager', '部门经理 Manager'], ['leader', '企业领导 Leadership']];
  const list = await api.get('approvals?' + params(query, defs));
  const rows = list.items.map((r) => h('tr', { dataset: { id: r.id } },
    h('td', {}, when(r.created_at)), h('td', {}, userName(r.technician_id)), h('td', {}, bi(lab('kind', r.kind))),
    num(yuan(r.amount_fen)), h('td', {}, r.reason, r.sale_id ? h('div', { class: 'muted' }, '销售单 Sale ', r.sale_id.slice(0, 8)) : null),
    h('td', {}, bi(label('role', r.decider_role))),
    h('td', {}, badge(lab('status', r.status), 'a-' + r.status), r.decided_by ? h('div', { class: 'muted' }, userName(r.decided_by), ' ', when(r.decided_at), r.decision_note ? ' · ' + r.decision_note : '') : null),
    h('td', {}, actionForms('approvals', r, reload))));
  return h('div', { class: 'card' }, filters('approvals', query, defs),
    table(['提交 Made', '技术员 Technician', '类别 Kind', '金额 Amount', '事由 Reason', '审批人 Decider', '状态 Status', '操作 Steps'], rows));
}

async function expensesPage(query, reload) {
  const defs = [['status', '状态 Status', [['submitted', '待报销 Submitted'], ['reimbursed', '已报销 Reimbursed'], ['refused', '不予报销 Refused'], ['', '全部 All']]]];
  const list = await api.get('expenses?' + params(query, defs));
  const rows = list.items.map((r) => h('tr', { dataset: { id: r.id } },
    h('td', {}, when(r.created_at)), h('td', {}, userName(r.technician_id)), h('td', {}, bi(lab('kind', r.kind))), num(yuan(r.amount_fen)),
    h('td', {}, r.approval_id ? r.approval_id.slice(0, 8) : '—'), h('td', {}, r.receipt_blob ? badge('有票据 Receipt') : '—'),
    h('td', {}, badge(lab('status', r.status)), r.decision_note ? h('div', { class: 'muted' }, r.decision_note) : null),
    h('td', {}, actionForms('expenses', r, reload))));
  return h('div', { class: 'card' }, filters('expenses', query, defs),
    table(['提交 Made', '技术员 Technician', '类别 Kind', '金额 Amount', '审批 Approval', '票据 Receipt', '状态 Status', '操作 Steps'], rows));
}

const BUCKETS = ['0-30', '31-90', '91-180', '181-364', '365+'];

async function salesPage(query, reload) {
  const [recv, list] = await Promise.all([api.get('receivables'), api.get('sales')]);
  await customerNames([...recv.items.map((r) => r.customer_id), ...list.items.map((r) => r.customer_id)]);
  const reminded = new Map(list.items.map((s) => [s.id, s.reminded_days]));
  const ageing = h('section', { class: 'card', id: 'receivables' }, h('h2', {}, bi('应收账款 Receivables'), ' ', yuan(recv.owed_fen)),
    h('div', { class: 'table-wrap' }, h('table', { class: 'money buckets' },
      h('thead', {}, h('tr', {}, BUCKETS.map((b) => h('th', { scope: 'col' }, b + ' 天 days')))),
      h('tbody', {}, h('tr', {}, BUCKETS.map((b) => num(yuan(recv.buckets?.[b] || 0))))))),
    table(['销售单 Sale', '经办人 Handler', '客户 Customer', '欠款 Owed', '账龄 Age', '账龄段 Bucket', '已提醒 Reminded', '承担 Charged to handler'],
      recv.items.map((r) => h('tr', { dataset: { receivable: r.sale_id } }, h('td', {}, r.sale_id.slice(0, 8)), h('td', {}, userName(r.technician_id)),
        h('td', {}, customerName(r.customer_id)), num(yuan(r.owed_fen)), num(r.age_days + ' 天 d'),
        h('td', {}, badge(r.bucket, r.bucket === '365+' ? 'danger' : (r.bucket === '0-30' ? '' : 'warn'))),
        h('td', {}, reminded.get(r.sale_id) ? reminded.get(r.sale_id) + ' 天 d' : '—'),
        num(r.liability_fen ? yuan(r.liability_fen) : '—')))));
  const rows = list.items.map((r) => h('tr', { dataset: { id: r.id } },
    h('td', {}, when(r.created_at)), h('td', {}, userName(r.technician_id)), h('td', {}, bi(lab('kind', r.kind))), h('td', {}, customerName(r.customer_id)),
    num(yuan(r.total_fen)), num(r.cost_fen ? yuan(r.cost_fen) : '—'), num(yuan(r.paid_fen)),
    h('td', {}, r.collected_at ? badge('已收清 Collected', 'ok') : null, r.shipped_at ? badge('已发货 Shipped') : null,
      r.invoice_issued_at ? badge('已开票 Invoiced') : null),
    h('td', {}, actionForms('sales', r, reload))));
  return h('div', {}, ageing, h('section', { class: 'card' }, h('h2', {}, bi('销售 Sales')),
    table(['登记 Made', '经办人 Handler', '类别 Kind', '客户 Customer', '金额 Total', '成本 Cost', '已收 Paid', '状态 Status', '操作 Steps'], rows)));
}

async function repairsPage(query, reload) {
  const defs = [['status', '状态 Status', [['', '全部 All'], ...['reported', 'answered', 'quoted', 'confirmed', 'shipped', 'received', 'repaired', 'returned', 'manufacturer'].map((s) => [s, lab('status', s)])]]];
  const list = await api.get('repairs?' + params(query, defs));
  await customerNames(list.items.map((r) => r.customer_id));
  const rows = list.items.map((r) => h('tr', { dataset: { id: r.id } },
    h('td', {}, when(r.created_at)), h('td', {}, userName(r.technician_id)), h('td', {}, customerName(r.customer_id)),
    h('td', {}, r.fault), h('td', {}, r.warranty_at ? [r.in_warranty ? '保内 In warranty' : '保外 Out of warranty', r.manufacturer_onsite ? ' · 厂家上门 on-site service' : ''] : '—'),
    num(r.quoted_at ? yuan(r.quote_fen) : '—'), h('td', {}, r.confirmed_by ? [r.confirmed_by, ' ', when(r.confirmed_at)] : '—'),
    num(yuan(r.paid_fen)), h('td', {}, badge(lab('status', r.status))),
    h('td', {}, actionForms('repairs', r, reload))));
  return h('div', { class: 'card' }, filters('repairs', query, defs),
    table(['登记 Made', '经办人 Handler', '客户 Customer', '故障 Fault', '保修 Warranty', '报价 Quote', '客户确认 Confirmed', '已收 Paid', '状态 Status', '操作 Steps'], rows));
}
