// i18n.js: bilingual labels (中文 English, as on the printed forms) and times shown in the
// company's time zone (the timezone setting).

const L = {
  status: {
    reported: '待核实 Reported', registered: '已登记 Registered', escalated: '已转经理 Escalated',
    dispatched: '已派工 Dispatched', accepted: '已接单 Accepted', en_route: '在途 En route',
    on_site: '已到场 On site', completed: '已完成 Completed', sheet_received: '已收反馈单 Sheet received',
    followed_up: '已回访 Followed up', closed: '已关闭 Closed', cancelled: '已取消 Cancelled',
  },
  urgency: {}, // from meta.json (setLabels): schema.UrgencyLabels, the one set of urgency words
  source: { hotline: '服务热线 Hotline', technician_report: '技术员上报 Technician report', leadership: '领导指示 Leadership' },
  warranty: { in: '保修期内 In warranty', out: '已过保 Out of warranty', unknown: '未知 Unknown' },
  service_mode: { onsite: '现场维修 On-site', phone: '电话服务 Phone', online: '网络在线 Online' },
  service_type: {
    repair: '维修 Repair', maintenance: '保养 Maintenance', installation: '安装 Installation',
    inspection: '巡检 Inspection', consultation: '咨询 Consultation', software: '软件服务 Software', other: '其他 Other',
  },
  outcome: { satisfied: '满意 Satisfied', unsatisfied: '不满意 Unsatisfied', unreachable: '未接通 Unreachable' },
  sheet_status: { draft: '填写中 Draft', signed: '已签署 Signed', received: '已接收 Received', returned: '已退回 Returned', void: '已作废 Void' },
  complaint_status: { open: '待处理 Open', upheld: '成立 Upheld', dismissed: '不成立 Dismissed' },
  channel: { wecom: '企业微信 WeCom', dingtalk: '钉钉 DingTalk', email: '邮件 Email', sms: '短信 SMS', webhook: 'Webhook' },
  month_status: { draft: '草稿 Draft', reviewed: '已审核 Reviewed', approved: '已批准 Approved' },
  role: { admin: '管理员 Admin', coordinator: '专职人员 Coordinator', technician: '技术员 Technician', manager: '部门经理 Manager', leader: '企业领导 Leadership', commerce: '商务部 Commerce' },
  action: {
    create: '登记 Registered', verify: '核实 Verify', reject: '驳回 Reject', dispatch: '派工 Dispatch', escalate: '转经理 Escalate',
    accept: '接单 Accept', en_route: '出发 En route', arrive: '到场 Arrive', start: '开始 Start', complete: '完成 Complete',
    cancel: '取消 Cancel', receive_sheet: '接收反馈单 Receive sheet', follow_up: '回访 Follow-up', close: '关闭 Close',
    reopen: '重新打开 Reopen', note: '备注 Note', orphaned_work: '离线工作 Orphaned work',
    deadline_warning: '时限将到 Deadline near', deadline_missed: '超过时限 Deadline missed', dispatched: '派单 Dispatched',
    escalated: '已升级 Escalated', report_waiting: '待核实报修 Report to verify', complaint: '投诉 Complaint', sheet_returned: '服务单退回 Sheet returned',
    compile: '汇总 Compile', review: '审核 Review', return: '退回 Return', approve: '批准 Approve',
  },
  field: {
    number: '单号 Number', received_at: '受理时间 Received', source: '来源 Source', customer_id: '客户 Customer',
    site_id: '地点 Site', asset_id: '设备 Equipment', contact_name: '联系人 Contact', contact_phone: '联系电话 Phone',
    address: '地址 Address', fault_symptoms: '故障现象 Fault symptoms', urgency: '紧急程度 Urgency',
    service_type: '服务类型 Service type', warranty: '保修 Warranty', warranty_reason: '保修说明 Warranty note',
    chargeable: '是否收费 Chargeable', agreed_handling: '商定处理方式 Agreed handling', service_mode: '服务方式 Service mode',
    actual_service_mode: '实际服务方式 Actual mode', assignee_id: '技术员 Technician', due_response_at: '响应时限 Respond by',
    due_arrival_at: '到场时限 Arrive by', tech_notes: '技术员备注 Technician notes', inspection_record: '检查记录 Inspection record',
    handling_result: '处理结果 Handling result', time_spent_min: '用时（分钟） Time spent (min)', cancel_reason: '取消原因 Cancel reason',
    reported_by: '登记人 Registered by', verified: '已核实 Verified', status: '状态 Status',
    rating: '满意度 Rating', signer_name: '客户签名人 Signed by', signature_blob: '客户签名 Customer signature',
    stamp_blob: '客户盖章 Customer stamp', technician_signature_blob: '技术员签名 Technician signature',
    description: '投诉内容 Complaint', technician_id: '技术员 Technician', notes: '备注 Notes', outcome: '回访结果 Outcome',
    reason: '原因 Reason', note: '说明 Note', comment: '意见 Comment', username: '用户名 Username', password: '密码 Password',
    parts: '配件 Parts', labour_fen: '人工费 Labour', departed_at: '离场时间 Departed', arrived_at: '到场时间 Arrived',
    reopened_from: '原工单 Reopened from', reopened_as: '新工单 Reopened as',
  },
};

export function label(kind, value) {
  if (value === null || value === undefined || value === '') return '—';
  return L[kind]?.[value] ?? String(value);
}

export const labels = L;

// setLabels takes the words the server's meta.json holds (schema.UrgencyLabels and the
// items' words), so the console says what the field app and the printed forms say.
export function setLabels(meta) {
  for (const [kind, codes] of Object.entries(meta?.labels || {})) {
    L[kind] = Object.fromEntries(Object.entries(codes).map(([code, l]) => [code, l.zh + ' ' + l.en]));
  }
  for (const [k, l] of Object.entries(meta?.items || {})) {
    if (!k.includes('.') && !L.field[k]) L.field[k] = l.zh + ' ' + l.en;
  }
}

let zone = 'Asia/Shanghai';
let fmt = null;
let dayFmt = null;

export function setTimeZone(tz) {
  try {
    new Intl.DateTimeFormat('zh-CN', { timeZone: tz });
    zone = tz;
  } catch { /* keep the default if the setting names an unknown zone */ }
  fmt = null;
  dayFmt = null;
}

export function timeZone() { return zone; }

// when formats an RFC 3339 time in the company's zone: 2026-11-26 17:24.
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  fmt ??= new Intl.DateTimeFormat('zh-CN', {
    timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  });
  const p = Object.fromEntries(fmt.formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

// thisMonth is the current month (YYYY-MM) in the company's zone.
export function thisMonth(offset = 0) {
  dayFmt ??= new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit' });
  const p = Object.fromEntries(dayFmt.formatToParts(new Date()).map((x) => [x.type, x.value]));
  let y = Number(p.year);
  let m = Number(p.month) + offset;
  while (m < 1) { m += 12; y -= 1; }
  while (m > 12) { m -= 12; y += 1; }
  return `${y}-${String(m).padStart(2, '0')}`;
}

// yuan formats an amount in fen.
export function yuan(fen) {
  const n = Number(fen || 0) / 100;
  return '¥' + n.toLocaleString('zh-CN', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
