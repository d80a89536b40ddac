// intake.js: registering a request (P3): find the customer, or the equipment by its serial
// with its warranty status shown at once, then classify and agree the handling.
import { api } from './api.js';
import { h, bi, flash, errorBox, showError, field, select, busy } from './ui.js';
import { label } from './i18n.js';
import { state, me } from './state.js';
import { customerControls, customerFields, warrantyBadge } from './customers.js';

const enc = encodeURIComponent;

// newCustomerForm registers a caller who is not in the system yet, without leaving the call:
// the customer, and if given their site and the equipment, then hands the customer (and the
// equipment) to chosen.
function newCustomerForm(chosen) {
  const box = errorBox();
  const form = h('form', { class: 'card new-customer', id: 'new-customer-form', novalidate: true, hidden: true },
    h('h2', {}, bi('新客户 New customer')),
    customerControls(),
    h('div', { class: 'grid2' },
      field('地点名称 Site name', h('input', { name: 'site_name', placeholder: '例如 e.g. 总部 Head office' })),
      field('地点地址 Site address', h('input', { name: 'site_address' }))),
    h('div', { class: 'grid3' },
      field('设备型号 Equipment model', h('input', { name: 'model' })),
      field('序列号 Serial', h('input', { name: 'serial' })),
      field('保修至 Warranty until', h('input', { name: 'warranty_until', type: 'date' }))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'manufacturer_onsite' }), ' ', bi('厂家提供上门服务 Manufacturer serves on site')),
    box,
    h('button', { type: 'submit', class: 'primary' }, bi('创建并选用 Create and use')), ' ',
    h('button', { type: 'button', onclick: () => { form.hidden = true; } }, bi('取消 Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    const v = (n) => form.elements[n].value.trim();
    if ((v('model') === '') !== (v('serial') === '')) {
      showError(form, box, { message: '设备需要型号和序列号 Equipment needs both model and serial', field: v('model') ? 'serial' : 'model' });
      return;
    }
    await busy(form, async () => {
      let c = null;
      try {
        const body = {};
        for (const n of customerFields) if (v(n)) body[n] = v(n);
        c = await api.post('customers', body);
        let site = null;
        if (v('site_name')) site = await api.post(`customers/${enc(c.id)}/sites`, { name: v('site_name'), ...(v('site_address') ? { address: v('site_address') } : {}) });
        let asset = null;
        if (v('serial')) {
          asset = await api.post('assets', {
            customer_id: c.id, model: v('model'), serial: v('serial'), manufacturer_onsite: form.elements.manufacturer_onsite.checked,
            ...(site ? { site_id: site.id } : {}), ...(v('warranty_until') ? { warranty_until: v('warranty_until') } : {}),
          });
        }
        await chosen(c, asset?.id);
        form.hidden = true;
        form.reset();
        flash(`${c.name} 已创建 created`);
      } catch (e) {
        if (c) { // the customer exists now: use it, and say what is missing
          await chosen(c).catch(() => {});
          e.message = `客户已创建，但 the customer was created, but: ${e.message}`;
        }
        showError(form, box, e);
      }
    });
  });
  return form;
}

export async function intakePage(query) {
  document.title = '登记 Intake · fieldsync';
  const m = state.meta;
  const box = errorBox();
  let customer = null;
  let assets = [];

  const custSearch = h('input', { type: 'search', id: 'cust-q', placeholder: '客户名称或电话 Name or phone', autocomplete: 'off' });
  const custResults = h('ul', { class: 'plain results', 'aria-live': 'polite' });
  const chosen = h('p', { class: 'chosen', 'aria-live': 'polite' }, h('span', { class: 'muted' }, '未选择客户 No customer chosen'));
  const serial = h('input', { id: 'serial-q', placeholder: '例如 e.g. HX-2023-0001', autocomplete: 'off' });
  const serialOut = h('div', { class: 'serial-out', 'aria-live': 'polite' });
  const siteSel = h('select', { name: 'site_id' }, h('option', { value: '' }, '—'));
  const assetSel = h('select', { name: 'asset_id' }, h('option', { value: '' }, '—'));
  const assetWarranty = h('span', { class: 'asset-warranty', 'aria-live': 'polite' });

  const showAssetWarranty = () => {
    const a = assets.find((x) => x.id === assetSel.value);
    assetWarranty.replaceChildren(a ? warrantyBadge(a.warranty_now) : '', a?.warranty_until ? ` 保修至 until ${a.warranty_until}` : '');
  };
  assetSel.addEventListener('change', showAssetWarranty);

  async function chooseCustomer(c, assetId) {
    const [sites, as] = await Promise.all([api.get(`customers/${enc(c.id)}/sites?limit=500`), api.get(`assets?customer_id=${enc(c.id)}&limit=500`)]);
    customer = c;
    custResults.replaceChildren();
    assets = as.items;
    siteSel.replaceChildren(h('option', { value: '' }, '— 无 None —'), ...sites.items.map((s) => h('option', { value: s.id }, s.name + (s.address ? ' · ' + s.address : ''))));
    if (sites.items.length === 1) siteSel.value = sites.items[0].id;
    assetSel.replaceChildren(h('option', { value: '' }, '— 无 None —'), ...assets.map((a) => h('option', { value: a.id }, `${a.model} · ${a.serial} · ${label('warranty', a.warranty_now)}`)));
    if (assetId) {
      assetSel.value = assetId;
      const a = assets.find((x) => x.id === assetId);
      if (a?.site_id) siteSel.value = a.site_id;
    } else if (assets.length === 1) assetSel.value = assets[0].id;
    showAssetWarranty();
    // Shown last: once the customer appears, the site and equipment are ready too.
    chosen.replaceChildren(h('strong', {}, c.name), c.phone ? ' · ' + c.phone : '', c.address ? ' · ' + c.address : '');
  }

  let searchTimer = 0;
  custSearch.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      const q = custSearch.value.trim();
      if (!q) { custResults.replaceChildren(); return; }
      try {
        const r = await api.get('customers?limit=10&q=' + enc(q));
        custResults.replaceChildren(...(r.items.length ? r.items.map((c) => h('li', {},
          h('button', { type: 'button', class: 'link', onclick: () => chooseCustomer(c).catch((e) => flash(e.message, 'err')) }, c.name),
          c.phone ? h('span', { class: 'muted' }, ' ' + c.phone) : null)) : [h('li', { class: 'muted' }, '没有找到 Nothing found')]));
      } catch (e) { flash(e.message, 'err'); }
    }, 200);
  });

  const findSerial = async () => {
    const s = serial.value.trim();
    if (!s) return;
    try {
      const r = await api.get('assets?serial=' + enc(s));
      if (!r.items.length) {
        serialOut.replaceChildren(h('span', { class: 'muted' }, '没有此序列号的设备 No equipment with this serial'));
        return;
      }
      const a = r.items[0];
      const c = await api.get('customers/' + enc(a.customer_id));
      await chooseCustomer(c, a.id);
      serialOut.replaceChildren(h('strong', {}, a.model), ' · ', c.name, ' · ', warrantyBadge(a.warranty_now),
        a.warranty_until ? ` 保修至 until ${a.warranty_until}` : '', a.manufacturer_onsite ? ' · 厂家可上门 manufacturer on-site service' : '');
    } catch (e) { flash(e.message, 'err'); }
  };
  serial.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); findSerial(); } });

  const newCust = newCustomerForm((c, assetId) => chooseCustomer(c, assetId));
  const sources = m.sources.filter((s) => s !== 'technician_report' || me()?.role === 'technician');
  const form = h('form', { class: 'card intake', id: 'intake-form', novalidate: true },
    h('h2', {}, bi('1. 客户与设备 Customer and equipment')),
    h('div', { class: 'grid2' },
      h('div', {}, field('查找客户 Find customer', custSearch), custResults,
        h('button', { type: 'button', id: 'new-customer-open', onclick: () => { newCust.hidden = false; newCust.elements.name.focus(); } }, bi('＋ 新客户 New customer'))),
      h('div', {}, field('按序列号查设备 Equipment by serial', serial), h('button', { type: 'button', onclick: findSerial }, bi('查找 Look up')), serialOut)),
    chosen,
    h('div', { class: 'grid2' }, field('地点 Site', siteSel), h('div', {}, field('设备 Equipment', assetSel), assetWarranty)),
    h('h2', {}, bi('2. 请求 Request')),
    h('div', { class: 'grid2' },
      field('联系人 Contact', h('input', { name: 'contact_name', placeholder: '默认为地点联系人 default: the site contact' })),
      field('联系电话 Phone', h('input', { name: 'contact_phone', type: 'tel' }))),
    field('地址 Address', h('input', { name: 'address', placeholder: '默认为地点地址 default: the site address' })),
    field('故障现象 Fault symptoms', h('textarea', { name: 'fault_symptoms', rows: 3, required: true })),
    h('h2', {}, bi('3. 分类与处理 Classification and handling')),
    h('div', { class: 'grid3' },
      // A leader's request is leadership's instruction (P2), not a hotline call.
      field('来源 Source', select('source', sources.map((s) => [s, label('source', s)]), me()?.role === 'leader' ? 'leadership' : 'hotline')),
      field('紧急程度 Urgency', select('urgency', m.urgencies.map((u) => [u, label('urgency', u)]), 'normal')),
      field('服务类型 Service type', select('service_type', m.service_types.map((u) => [u, label('service_type', u)]), 'repair')),
      // No default: the policy prefers phone and online service, so the mode is a choice.
      field('服务方式 Service mode', select('service_mode', [['', '— 请选择（优先电话、网络）Choose (phone or online first) —'],
        ...['phone', 'online', 'onsite'].filter((u) => m.service_modes.includes(u)).map((u) => [u, label('service_mode', u)])], '', { required: true })),
      field('保修 Warranty', select('warranty', [['', '按设备自动 From the equipment'], ...m.warranties.map((u) => [u, label('warranty', u)])], '')),
      field('保修说明 Warranty note', h('input', { name: 'warranty_reason', placeholder: '改保修状态时必填 needed when overriding' }))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'chargeable' }), ' ', bi('收费服务 Chargeable')),
    field('与客户商定的处理方式 Handling agreed with the customer', h('textarea', { name: 'agreed_handling', rows: 2 })),
    box,
    h('button', { type: 'submit', class: 'primary' }, bi('登记 Register request')));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, box, null);
    if (!customer) {
      showError(form, box, { message: '请先选择客户 Choose the customer first', field: '' });
      custSearch.focus();
      return;
    }
    const fd = new FormData(form);
    if (!fd.get('service_mode')) {
      showError(form, box, { message: '请选择服务方式（优先电话或网络服务）Choose the service mode (phone or online first, where they will do)', field: 'service_mode' });
      return;
    }
    const body = { customer_id: customer.id, chargeable: fd.get('chargeable') === 'on' };
    for (const k of ['site_id', 'asset_id', 'contact_name', 'contact_phone', 'address', 'fault_symptoms', 'source', 'urgency', 'service_type', 'service_mode', 'warranty', 'warranty_reason', 'agreed_handling']) {
      const v = String(fd.get(k) ?? '').trim();
      if (v) body[k] = v;
    }
    await busy(form, async () => {
      try {
        const t = await api.post('tickets', body);
        flash(`${t.number} 已登记 registered`);
        location.hash = '#/tickets/' + enc(t.id);
      } catch (e) { showError(form, box, e); }
    });
  });

  if (query?.get('customer')) await chooseCustomer(await api.get('customers/' + enc(query.get('customer'))));
  return h('section', {}, h('div', { class: 'page-head' }, h('h1', {}, bi('登记服务请求 Register a request'))), newCust, form);
}
