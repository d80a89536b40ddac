// queues.js: the work queues with their counts, under the menu: what waits for the office
// now. Each links to the ticket list filtered to it; the counts are read again on every page.
import { api } from './api.js';
import { h, bi } from './ui.js';

const QUEUES = [
  { id: 'verify', text: '待核实 To verify', q: 'status=reported' },
  { id: 'dispatch', text: '待派工 To dispatch', q: 'status=registered,escalated' },
  { id: 'overdue', text: '超时 Overdue', q: 'overdue=true', danger: true },
  { id: 'sheets', text: '待收单 Sheets to receive', q: 'status=completed' },
  { id: 'followup', text: '待回访 Follow-up calls', q: 'status=sheet_received' },
];

export async function renderQueues(el) {
  const counts = await Promise.all(QUEUES.map((x) => api.get('tickets?limit=1&' + x.q).then((r) => r.total, () => null)));
  el.replaceChildren(...QUEUES.map((x, i) => h('a', {
    href: '#/tickets?' + x.q, class: 'queue' + (x.danger && counts[i] ? ' danger' : ''), dataset: { queue: x.id },
  }, bi(x.text), ' ', h('span', { class: 'count' }, counts[i] ?? '?'))));
}
