// customers.js: master data: customers with their sites and equipment (list, search,
// create, edit with If-Match), and import / export of customers and equipment from CSV or
// XLSX with a preview that names every bad row.
import { api, download } from './api.js';
import { h, bi, flash, errorBox, showError, field, badge, busy } from './ui.js';
import { label } from './i18n.js';

const enc = encodeURIComponent;
const PAGE = 20;

// formValues reads the named controls of a form: text trimmed, checkboxes as booleans.
// Empty text is left out when creating and sent as "" when editing (to clear it).
function formValues(form, names, editing) {
  const out = {};
  for (const n of names) {
    const el = form.elements[n];
    if (!el) continue;
    if (el.type === 'checkbox') out[n] = el.checked;
    else if (el.value.trim() || editing) out[n] = el.value.trim();
  }
  return out;
}

// recordForm is a create-or-edit form for one record. save(body) returns the saved record.
function recordForm(id, title, controls, names, rec, save, done) {
  const box = errorBox();
  const form = h('form', { class: 'card record-form', id, novalidate: true },
    h('h2', {}, bi(title)), controls, box,
    h('button', { type: 'submit', class: 'primary' }, bi(rec ? '保存 Save' : '创建 Create')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    await busy(form, async () => {
      try {
        const body = formValues(form, names, !!rec);
        if (rec) for (const k of Object.keys(body)) if ((rec[k] ?? '') === body[k] || (body[k] === false && !rec[k])) delete body[k];
        const saved = await save(body);
        flash('已保存 Saved');
        done(saved);
      } catch (e) {
        if (e.code === 'precondition_failed') e.message = '此记录已被他人修改，请刷新后重试 Someone else changed this record meanwhile; reload and try again. ' + e.message;
        showError(form, box, e);
      }
    });
  });
  return form;
}

const input = (name, v, attrs = {}) => h('input', { name, value: v ?? '', ...attrs });

export function customerControls(c = {}) {
  return [h('div', { class: 'grid3' },
    field('名称 Name', input('name', c.name, { required: true })),
    field('编号 Code', input('code', c.code)),
    field('电话 Phone', input('phone', c.phone, { type: 'tel' }))),
  field('地址 Address', input('address', c.address)),
  field('备注 Notes', h('textarea', { name: 'notes', rows: 2 }, c.notes || ''))];
}
export const customerFields = ['name', 'code', 'phone', 'address', 'notes'];

export function siteControls(s = {}) {
  return [h('div', { class: 'grid2' }, field('地点名称 Site name', input('name', s.name, { required: true })), field('地点地址 Site address', input('address', s.address)))];
}
export const siteFields = ['name', 'address'];

export function assetControls(a = {}, sites = []) {
  return [h('div', { class: 'grid3' },
    field('型号 Model', input('model', a.model, { required: true })),
    field('序列号 Serial', input('serial', a.serial, { required: true })),
    sites ? field('地点 Site', h('select', { name: 'site_id' }, h('option', { value: '' }, '—'),
      sites.map((s) => h('option', { value: s.id, selected: s.id === a.site_id }, s.name)))) : null,
    field('安装日期 Installed', input('install_date', a.install_date, { type: 'date' })),
    field('保修至 Warranty until', input('warranty_until', a.warranty_until, { type: 'date' })),
    field('厂家 Manufacturer', input('manufacturer', a.manufacturer))),
  h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'manufacturer_onsite', checked: !!a.manufacturer_onsite }), ' ', bi('厂家提供上门服务 Manufacturer serves on site'))];
}
export const assetFields = ['model', 'serial', 'site_id', 'install_date', 'warranty_until', 'manufacturer', 'manufacturer_onsite'];

export function warrantyBadge(w) {
  return badge(label('warranty', w), w === 'in' ? 'ok' : w === 'out' ? 'warn' : '');
}

// ---- the list ----

export async function customersPage(query) {
  document.title = '客户 Customers · fieldsync';
  const q = query.get('q') || '';
  const offset = Math.max(0, Number(query.get('offset')) || 0);
  const params = new URLSearchParams({ limit: PAGE, offset });
  if (q) params.set('q', q);
  const res = await api.get('customers?' + params);

  const search = h('form', { class: 'filters', role: 'search', 'aria-label': '查找客户 Find customers' },
    field('搜索 Search', h('input', { type: 'search', name: 'q', value: q, placeholder: '名称、电话、编号 name, phone, code' })),
    h('button', { type: 'submit', class: 'primary' }, bi('查找 Find')));
  search.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = search.elements.q.value.trim();
    location.hash = '#/customers' + (v ? '?q=' + enc(v) : '');
  });

  const create = recordForm('customer-new', '新客户 New customer', customerControls(), customerFields, null,
    (body) => api.post('customers', body), (c) => { location.hash = '#/customers/' + enc(c.id); });
  create.hidden = true;

  const last = Math.min(offset + res.items.length, res.total);
  const pageLink = (off, text) => {
    const p = new URLSearchParams(query);
    p.set('offset', off);
    return h('a', { class: 'button', href: '#/customers?' + p }, text);
  };
  return h('section', {},
    h('div', { class: 'page-head' }, h('h1', {}, bi('客户 Customers')),
      h('div', { class: 'head-actions' },
        h('button', { type: 'button', class: 'primary', id: 'customer-new-open', onclick: () => { create.hidden = false; create.elements.name.focus(); } }, bi('＋ 新客户 New customer')),
        ' ', h('a', { class: 'button', href: '#/import' }, bi('导入导出 Import / export')))),
    create,
    search,
    res.items.length === 0
      ? h('p', { class: 'empty' }, '没有找到客户 No customers found')
      : h('div', { class: 'table-wrap' }, h('table', { class: 'customers' },
        h('caption', { class: 'sr-only' }, '客户列表 Customer list'),
        h('thead', {}, h('tr', {}, ['名称 Name', '编号 Code', '电话 Phone', '地址 Address'].map((c) => h('th', { scope: 'col' }, bi(c))))),
        h('tbody', {}, res.items.map((c) => h('tr', {},
          h('td', {}, h('a', { href: '#/customers/' + enc(c.id) }, c.name)),
          h('td', {}, c.code || '—'), h('td', { class: 'nowrap' }, c.phone || '—'), h('td', {}, c.address || '—')))))),
    h('nav', { class: 'pager', 'aria-label': '分页 Pages' },
      offset > 0 ? pageLink(Math.max(0, offset - PAGE), '‹ 上一页 Previous') : null,
      h('span', { class: 'muted' }, res.total ? `${offset + 1}–${last} / ${res.total}` : '0'),
      last < res.total ? pageLink(offset + PAGE, '下一页 Next ›') : null));
}

// ---- one customer with its sites and equipment ----

export async function customerPage(id) {
  const [c, sites, assets] = await Promise.all([
    api.get('customers/' + enc(id)), api.get(`customers/${enc(id)}/sites?limit=500`), api.get(`assets?customer_id=${enc(id)}&limit=500`)]);
  document.title = c.name + ' · fieldsync';
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const siteName = (sid) => sites.items.find((s) => s.id === sid)?.name || '—';

  const edit = recordForm('customer-edit', '客户资料 Customer', customerControls(c), customerFields, c,
    (body) => api.patch('customers/' + enc(id), body, c.version), reload);

  // Each site and asset row opens its own edit form below the table.
  const slot = h('div', { id: 'edit-slot' });
  const open = (form) => { slot.replaceChildren(form); form.scrollIntoView({ block: 'nearest' }); form.querySelector('input')?.focus(); };
  const newSite = () => open(recordForm('site-form', '新地点 New site', siteControls(), siteFields, null,
    (body) => api.post(`customers/${enc(id)}/sites`, body), reload));
  const editSite = (s) => open(recordForm('site-form', '修改地点 Edit site', siteControls(s), siteFields, s,
    (body) => api.patch('sites/' + enc(s.id), body, s.version), reload));
  const newAsset = () => open(recordForm('asset-form', '新设备 New equipment', assetControls({}, sites.items), assetFields, null,
    (body) => api.post('assets', { ...body, customer_id: id }), reload));
  const editAsset = (a) => open(recordForm('asset-form', '修改设备 Edit equipment', assetControls(a, sites.items), assetFields, a,
    (body) => api.patch('assets/' + enc(a.id), body, a.version), reload));

  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/customers' }, '‹ 客户 Customers')),
    h('div', { class: 'page-head' }, h('h1', {}, c.name, c.code ? h('span', { class: 'customer' }, c.code) : null),
      h('a', { class: 'button primary', href: '#/intake?customer=' + enc(id) }, bi('＋ 登记请求 New request'))),
    edit,
    h('div', { class: 'card' },
      h('div', { class: 'page-head' }, h('h2', {}, bi('地点 Sites')), h('button', { type: 'button', id: 'site-new', onclick: newSite }, bi('＋ 新地点 New site'))),
      sites.items.length === 0 ? h('p', { class: 'muted' }, '没有地点 No sites') : h('table', { class: 'sites' },
        h('thead', {}, h('tr', {}, ['地点 Site', '地址 Address', ''].map((x) => h('th', { scope: 'col' }, bi(x))))),
        h('tbody', {}, sites.items.map((s) => h('tr', {}, h('td', {}, s.name), h('td', {}, s.address || '—'),
          h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => editSite(s) }, bi('修改 Edit')))))))),
    h('div', { class: 'card' },
      h('div', { class: 'page-head' }, h('h2', {}, bi('设备 Equipment')), h('button', { type: 'button', id: 'asset-new', onclick: newAsset }, bi('＋ 新设备 New equipment'))),
      assets.items.length === 0 ? h('p', { class: 'muted' }, '没有设备 No equipment') : h('table', { class: 'assets' },
        h('thead', {}, h('tr', {}, ['型号 Model', '序列号 Serial', '地点 Site', '保修 Warranty', '厂家 Manufacturer', ''].map((x) => h('th', { scope: 'col' }, bi(x))))),
        h('tbody', {}, assets.items.map((a) => h('tr', {}, h('td', {}, a.model), h('td', {}, h('code', {}, a.serial)), h('td', {}, siteName(a.site_id)),
          h('td', {}, warrantyBadge(a.warranty_now), a.warranty_until ? ' ' + a.warranty_until : ''),
          h('td', {}, a.manufacturer || '—', a.manufacturer_onsite ? [' · ', badge('厂家上门 on-site', 'ok')] : null),
          h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => editAsset(a) }, bi('修改 Edit')))))))),
    slot);
}

// ---- import / export ----

export async function importPage() {
  document.title = '导入导出 Import / export · fieldsync';
  const box = errorBox();
  const out = h('div', { id: 'import-report', 'aria-live': 'polite' });
  const kind = h('select', { name: 'kind' }, h('option', { value: 'customers' }, '客户 Customers'), h('option', { value: 'equipment' }, '设备 Equipment'));
  const file = h('input', { type: 'file', name: 'file', accept: '.csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
  const commit = h('button', { type: 'button', class: 'primary', id: 'import-commit', disabled: true }, bi('导入 Import'));
  const form = h('form', { class: 'card', id: 'import-form' },
    h('h2', {}, bi('导入 Import')),
    h('div', { class: 'grid2' }, field('类型 Kind', kind), field('文件 File (CSV UTF-8 / XLSX)', file)),
    h('p', { class: 'muted small' }, '先预览：有任何错误行时不会写入任何数据；同一文件再次导入不会改变数据。',
      h('br'), 'Preview first: a file with any bad row writes nothing; importing the same file again changes nothing.'),
    box,
    h('button', { type: 'submit' }, bi('预览 Preview')), ' ', commit);
  const path = () => `import/${kind.value}`;
  const show = (r) => {
    out.replaceChildren(h('div', { class: 'card' },
      h('h2', {}, bi(r.written ? '已导入 Imported' : '预览 Preview')),
      h('p', { class: 'counts' }, `${r.rows} 行 rows · 新建 create ${r.create} · 更新 update ${r.update} · 不变 unchanged ${r.unchanged}`,
        r.sites_created ? ` · 新地点 new sites ${r.sites_created}` : ''),
      r.errors.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'import-errors' },
        h('caption', {}, bi(`${r.errors.length} 处错误，请修改文件后重新预览 ${r.errors.length} errors: fix the file and preview again`)),
        h('thead', {}, h('tr', {}, ['行 Line', '列 Column', '原因 Reason'].map((x) => h('th', { scope: 'col' }, bi(x))))),
        h('tbody', {}, r.errors.map((e) => h('tr', {}, h('td', { class: 'num' }, e.line), h('td', {}, e.column || '—'), h('td', {}, e.reason)))))) : null,
      r.preview.length ? h('table', { class: 'import-preview' },
        h('thead', {}, h('tr', {}, ['行 Line', '操作 Action', '键 Key', '变更 Changes'].map((x) => h('th', { scope: 'col' }, bi(x))))),
        h('tbody', {}, r.preview.map((p) => h('tr', {}, h('td', { class: 'num' }, p.line),
          h('td', {}, p.action === 'create' ? '新建 create' : '更新 update'), h('td', {}, p.key), h('td', {}, (p.changes || []).join(', ')))))) : null));
  };
  const send = async (doCommit) => {
    showError(form, box, null);
    if (!file.files[0]) { showError(form, box, { message: '请选择文件 Choose a file', field: 'file' }); return; }
    let ready = false; // the import is offered only after a clean preview with something to do
    await busy(form, async () => {
      try {
        const r = await api.upload(path() + (doCommit ? '?commit=true' : ''), file.files[0]);
        show(r);
        ready = !doCommit && r.errors.length === 0 && (r.create + r.update + r.sites_created) > 0;
        if (doCommit) flash(`已导入 Imported: ${r.create + r.update}`);
      } catch (e) {
        if (e.body?.report) show(e.body.report);
        showError(form, box, e);
      }
    });
    commit.disabled = !ready; // after busy, which enables every button again
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); send(false); });
  commit.addEventListener('click', () => send(true));
  for (const el of [kind, file]) el.addEventListener('change', () => { commit.disabled = true; out.replaceChildren(); });

  const exp = (k, f) => h('button', { type: 'button', onclick: () => download(`/api/v1/export/${k}?format=${f}`, `${k}.${f}`).catch((e) => flash(e.message, 'err')) }, `${k === 'customers' ? '客户 Customers' : '设备 Equipment'} · ${f.toUpperCase()}`);
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/customers' }, '‹ 客户 Customers')),
    h('div', { class: 'page-head' }, h('h1', {}, bi('导入导出 Import / export'))),
    form, out,
    h('div', { class: 'card' }, h('h2', {}, bi('导出 Export')),
      h('p', { class: 'muted small' }, '导出的文件格式与导入相同 Exported files have the import\'s columns.'),
      exp('customers', 'csv'), ' ', exp('customers', 'xlsx'), ' ', exp('equipment', 'csv'), ' ', exp('equipment', 'xlsx')),
    h('div', { class: 'card' }, h('h2', {}, bi('列 Columns')),
      h('p', {}, h('strong', {}, '客户 Customers: '), h('code', {}, 'code 编号, name 名称*, phone 电话, address 地址, notes 备注')),
      h('p', {}, h('strong', {}, '设备 Equipment: '), h('code', {}, 'serial 序列号*, model 型号*, customer_code 客户编号, customer_name 客户名称, customer_phone 客户电话, site 地点, site_address 地点地址, install_date 安装日期, warranty_until 保修至, manufacturer 厂家, manufacturer_onsite 厂家上门')),
      h('p', { class: 'muted small' }, '客户按编号识别，没有编号时按名称加电话；设备按序列号识别；空白单元格不改变已有值。',
        h('br'), 'Customers are matched by code, or by name and phone without one; equipment by serial; an empty cell leaves the value as it is.')));
}
