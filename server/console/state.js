// state.js: what every page needs once per login: the workflow table, users, devices,
// settings, and a cache of customer names.
import { api, session } from './api.js';
import { setTimeZone, setLabels } from './i18n.js';

export const state = {
  meta: null,
  users: new Map(),
  devices: new Map(),
  customers: new Map(),
  settings: {},
};

export async function loadMeta() {
  if (!state.meta) {
    state.meta = await api.get('/console/meta.json');
    setLabels(state.meta);
  }
  return state.meta;
}

export async function loadSession() {
  await loadMeta();
  const [users, settings, devices] = await Promise.all([
    api.get('users'), api.get('settings'), api.get('devices').catch(() => ({ items: [] })),
  ]);
  state.users = new Map(users.items.map((u) => [u.id, u]));
  state.settings = Object.fromEntries(settings.items.map((s) => [s.key, s.value]));
  state.devices = new Map(devices.items.map((d) => [d.id, d]));
  setTimeZone(state.settings.timezone || 'Asia/Shanghai');
}

export function me() { return session.user; }

export function userName(id) {
  if (!id) return '—';
  if (id === 'system') return 'fieldsync';
  return state.users.get(id)?.name || id.slice(0, 8);
}

export function deviceName(id) {
  if (!id) return '网页 Web';
  const d = state.devices.get(id);
  return d ? (d.name || d.device_id || id) : '设备 Device ' + id.slice(0, 8);
}

export function technicians() {
  return [...state.users.values()].filter((u) => u.role === 'technician' && u.active !== false);
}

// customerNames fills the cache for the given ids, one request per unknown customer.
export async function customerNames(ids) {
  const missing = [...new Set(ids.filter((id) => id && !state.customers.has(id)))];
  await Promise.all(missing.map(async (id) => {
    try {
      state.customers.set(id, await api.get('customers/' + encodeURIComponent(id)));
    } catch {
      state.customers.set(id, { id, name: id.slice(0, 8) });
    }
  }));
}

export function customerName(id) {
  return state.customers.get(id)?.name || '—';
}

// allowedSteps lists the office workflow steps the logged-in role may take on a ticket now.
export const OFFICE_ACTIONS = ['verify', 'reject', 'dispatch', 'escalate', 'cancel', 'receive_sheet', 'close', 'reopen'];
export function allowedSteps(ticket) {
  const role = me()?.role;
  return (state.meta?.steps || []).filter((s) => OFFICE_ACTIONS.includes(s.action)
    && s.roles.includes(role) && s.from.includes(ticket.status));
}
