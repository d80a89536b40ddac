// months.js: month-end (P8): the coordinator compiles the statistics table, the manager
// reviews it, leadership approves it; the table per technician and the report files.
import { api, openDocument, download } from './api.js';
import { askFirst, h, bi, flash, errorBox, showError, field, badge, busy } from './ui.js';
import { label, when, thisMonth, yuan } from './i18n.js';
import { me } from './state.js';

const enc = encodeURIComponent;

// reasonText names the items an incomplete sheet lacks in words, not by their field names.
function reasonText(r) {
  return String(r || '').replace(/missing ([a-z_]+(?:, [a-z_]+)*)/, (_, list) => '缺 missing ' + list.split(', ').map((f) => label('field', f)).join('、'));
}

export async function monthsPage(month) {
  month = /^\d{4}-\d{2}$/.test(month || '') ? month : thisMonth();
  document.title = '月末统计 Month-end ' + month + ' · fieldsync';
  const role = me()?.role;
  const picker = h('form', { class: 'filters' },
    field('月份 Month', h('input', { type: 'month', name: 'month', value: month, required: true })),
    h('button', { type: 'submit', class: 'primary' }, bi('查看 Show')));
  picker.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = '#/months/' + picker.month.value;
  });

  let rep = null;
  let missing = null;
  try {
    rep = await api.get('months/' + enc(month));
  } catch (e) {
    if (e.status !== 404) throw e;
    missing = e;
  }
  const reload = (msg) => {
    flash(msg);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  };
  const box = errorBox();
  const steps = h('form', { class: 'month-actions' });
  // question, when given, is asked first (askFirst): approving a month cannot be undone.
  const act = (text, fn, cls, question) => {
    const run = () => busy(steps, async () => {
      showError(steps, box, null);
      try { await fn(); } catch (e) { showError(steps, box, e); }
    });
    const b = h('button', { type: 'button', class: cls || '', onclick: () => (question ? askFirst(b, question, run) : run()) }, bi(text));
    return b;
  };
  const comment = h('input', { name: 'comment', placeholder: '退回意见 Comment for return' });
  const st = rep?.status;
  if (['coordinator', 'admin'].includes(role) && (!rep || st === 'draft')) {
    steps.append(act(rep ? '重新汇总 Recompile' : '汇总本月 Compile', async () => {
      await api.post(`months/${enc(month)}/compile`);
      reload('已汇总 Compiled ' + month);
    }, 'primary', month === thisMonth()
      ? `${month} 尚未结束：现在汇总的是到目前为止的数据，月末前请重新汇总；本月批准后才到的反馈单计入下月。 ${month} is not over: this compiles the month so far (recompile at month-end); sheets that arrive after it is approved count in the next month.`
      : null));
  }
  if (role === 'manager' && st === 'draft') steps.append(act('审核通过 Review', async () => { await api.post(`months/${enc(month)}/actions/review`, {}); reload('已审核 Reviewed'); }, 'primary'));
  if (role === 'leader' && st === 'reviewed') {
    steps.append(act('批准 Approve', async () => { await api.post(`months/${enc(month)}/actions/approve`, {}); reload('已批准 Approved'); }, 'primary',
      `批准 ${month}？批准后本月锁定，不能再修改。 Approve ${month}? An approved month is locked for good.`));
  }
  if ((role === 'manager' && st === 'draft') || ((role === 'manager' || role === 'leader') && st === 'reviewed')) {
    steps.append(field('意见 Comment', comment), act('退回 Return', async () => {
      await api.post(`months/${enc(month)}/actions/return`, { comment: comment.value.trim() });
      reload('已退回 Returned');
    }, 'danger'));
  }
  steps.append(box);

  const head = h('div', { class: 'page-head' }, h('h1', {}, bi('月末统计 Month-end'), ' ', month),
    rep ? badge(label('month_status', rep.status), 'm-' + rep.status) : null);
  if (!rep) {
    return h('section', {}, head, picker, h('div', { class: 'card' },
      h('p', {}, '本月尚未汇总 This month is not compiled yet.', missing?.message ? h('span', { class: 'muted' }, ' (' + missing.message + ')') : null),
      steps));
  }
  const rows = rep.rows || [];
  const tot = rep.totals || {};
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'month' },
    h('thead', {}, h('tr', {}, ['技术员 Technician', '计数服务 Counted', '未计 Excluded', '现场/电话/在线 On-site/phone/online', '满意度 Rating', '按时响应/到场 On time: response/arrival', '投诉 Complaints', '补贴 Allowance', '奖惩 Bonus', '劳务 Labour', '合计 Total']
      .map((c) => h('th', { scope: 'col' }, bi(c))))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('th', { scope: 'row' }, r.technician?.name, r.probation ? [' ', badge('试用期 Probation', 'warn')] : null, r.dedicated === false ? [' ', badge('非专职 Non-dedicated')] : null),
      h('td', { class: 'num' }, r.counted_services), h('td', { class: 'num' }, r.excluded_services),
      h('td', { class: 'num' }, `${r.modes?.onsite ?? 0}/${r.modes?.phone ?? 0}/${r.modes?.online ?? 0}`),
      h('td', { class: 'num' }, r.rated_services ? r.average_rating.toFixed(2) : '—'),
      h('td', { class: 'num' }, `${r.on_time_responses ?? 0}/${r.on_time_arrivals ?? 0}`),
      h('td', { class: 'num' }, r.complaints, r.bonus_forfeited ? [' ', badge('奖金取消 Forfeited', 'danger')] : null),
      h('td', { class: 'num' }, yuan(r.allowance_fen)), h('td', { class: 'num' }, yuan(r.bonus_fen)),
      h('td', { class: 'num' }, yuan(r.labour_fen)), h('td', { class: 'num strong' }, yuan(r.total_fen))))),
    h('tfoot', {}, h('tr', {}, h('th', { scope: 'row' }, bi('合计 Total')), h('td', { class: 'num' }, tot.counted_services), h('td', { class: 'num' }, tot.excluded_services),
      h('td', {}), h('td', {}), h('td', { class: 'num' }, `${tot.on_time_responses ?? 0}/${tot.on_time_arrivals ?? 0}`), h('td', { class: 'num' }, tot.complaints), h('td', { class: 'num' }, yuan(tot.allowance_fen)),
      h('td', { class: 'num' }, yuan(tot.bonus_fen)), h('td', { class: 'num' }, yuan(tot.labour_fen)), h('td', { class: 'num strong' }, yuan(tot.total_fen))))));
  const money = moneyTable(rows, tot);
  const excluded = rep.excluded || [];
  // The services the policy asks to see apart: sheets from paper, steps the office recorded
  // for the technician, incomplete sheets counted by a manager's exception, and no sheet.
  const special = [];
  for (const r of rows) {
    for (const s of r.counted || []) {
      if (s.origin === 'paper') special.push([s.ticket_number, r.technician?.name, '纸质反馈单 Paper sheet', `由 ${s.entered_by} 录入 entered by ${s.entered_by}`]);
      if (s.recorded_by_office) special.push([s.ticket_number, r.technician?.name, '代技术员记录 Recorded for the technician', '完成步骤由办公室代录 the office recorded the completion']);
      if (s.exception) special.push([s.ticket_number, r.technician?.name, '例外计入 Counted by exception', `${s.exception.by}: ${s.exception.note}`]);
    }
    for (const n of r.no_sheet || []) special.push([n.ticket_number, r.technician?.name, '无反馈单（不计入）No sheet (not counted)', `${n.by}: ${n.reason}`]);
  }
  return h('section', {}, head, picker,
    h('div', { class: 'card' },
      h('p', { class: 'links' },
        h('button', { type: 'button', class: 'link', onclick: () => openDocument(`/api/v1/months/${enc(month)}/report.pdf`).catch((e) => flash(e.message, 'err')) }, bi('月报 PDF Report PDF')), ' · ',
        h('button', { type: 'button', class: 'link', onclick: () => download(`/api/v1/months/${enc(month)}/report.csv`, `month-${month}.csv`).catch((e) => flash(e.message, 'err')) }, bi('统计表 CSV Table CSV')), ' · ',
        h('button', { type: 'button', class: 'link', onclick: () => download(`/api/v1/months/${enc(month)}/report.xlsx`, `month-${month}.xlsx`).catch((e) => flash(e.message, 'err')) }, bi('工作簿 XLSX Workbook XLSX'))),
      steps),
    h('section', { class: 'card' }, h('h2', {}, bi('统计表 Statistics table')), table),
    special.length ? h('section', { class: 'card', id: 'month-special' }, h('h2', {}, bi('纸质、代录、例外与无反馈单 Paper, recorded for, exceptions, no sheet')),
      h('ul', { class: 'plain items' }, special.map(([no, tech, kind, detail]) => h('li', {}, h('strong', {}, no), ' · ', tech || '', ' · ', bi(kind), ' · ', detail)))) : null,
    money,
    excluded.length ? h('section', { class: 'card' }, h('h2', {}, bi('未计入的服务 Services not counted')),
      h('ul', { class: 'plain items' }, excluded.map((x) => h('li', {}, h('strong', {}, x.ticket_number), ' · ', x.technician?.name || '', ' · ', reasonText(x.reason))))) : null,
    (rep.warnings || []).length ? h('section', { class: 'card' }, h('h2', {}, bi('提示 Warnings')), h('ul', {}, rep.warnings.map((w) => h('li', {}, w)))) : null,
    h('section', { class: 'card' }, h('h2', {}, bi('流程记录 Trail')), h('ol', { class: 'events' }, (rep.trail || []).map((e) => h('li', { class: 'event' },
      h('strong', {}, bi(label('action', e.step))), e.comment ? ' · ' + e.comment : '', h('div', { class: 'ev-meta' }, when(e.at), ' · ', e.by_name || e.by))))));
}

// moneyTable is the month's pay and money per technician (docs/money.md): every part of pay,
// the total, and what is shown apart from pay, with the record ids behind the figures.
function moneyTable(rows, tot) {
  const cols = ['技术员 Technician', '底薪 Base salary', '提成 Commissions', '取消提成 Forfeited', '欠款承担 Liabilities', '私收费扣款 Unreported', '合计 Total', '报销 Expenses', '维修费 Repair fees', '款项记录 Records'];
  const cells = (r) => [yuan(r.base_salary_fen), yuan(r.commission_fen), yuan(r.commission_forfeited_fen), yuan(-(r.liability_fen || 0)),
    yuan(-(r.unreported_fen || 0)), yuan(r.total_fen), yuan(r.expenses_fen), yuan(r.repair_fees_fen)].map((v) => h('td', { class: 'num' }, v));
  return h('section', { class: 'card', id: 'month-money' }, h('h2', {}, bi('工资与款项 Pay and money')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'month' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, bi(c))))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, r.technician?.name), cells(r),
        h('td', { class: 'muted' }, (r.money_ids || []).join(' '))))),
      h('tfoot', {}, h('tr', {}, h('th', { scope: 'row' }, bi('合计 Total')), cells(tot), h('td', {}))))));
}
