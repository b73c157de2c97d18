// Every UI string of the counter screen and the progress lookup, in one dictionary.
// Chinese is the default; the English switch is kept in localStorage ("onewindow.lang").

const STRINGS = {
  zh: {
    "app.title": "一窗受理 · 综合窗口",
    "app.subtitle": "跨部门办件实时进度",
    "lookup.title": "办件进度查询",
    "lookup.subtitle": "输入办件编号和申请人证件号码后四位",
    "nav.search": "办件查询",
    "nav.board": "窗口看板",
    "nav.lookup": "群众进度查询",
    "lang.switch": "English",
    "conn.live": "实时更新中",
    "conn.connecting": "正在连接…",
    "conn.lost": "连接中断，正在重连…",
    "search.placeholder": "输入办件编号或申请人证件号码",
    "search.button": "查询",
    "search.hint": "证件号码只用于查询，不显示、不保存。",
    "search.none": "未找到匹配的办件。",
    "search.error": "查询失败，请稍后再试。",
    "search.many": "该申请人共有 {n} 件办件，点击查看：",
    "card.applicant": "申请人",
    "card.acceptance": "受理信息",
    "card.deadline": "承诺时限",
    "card.accepted_at": "受理时间",
    "card.window": "受理窗口",
    "card.channel": "受理渠道",
    "card.kind": "办件类型",
    "card.promise": "承诺时限",
    "card.due": "到期时间",
    "card.closed_at": "办结时间",
    "card.paused_since": "暂停计时自",
    "card.version": "已处理事件",
    "card.updated": "更新于",
    "card.provisional": "节假日安排未公布，时限按周一至周五暂计",
    "card.tasks": "各部门办理进度",
    "card.task_progress": "已办结 {done}/{total} 个部门",
    "card.timeline": "办理时间线",
    "card.documents": "已在档材料",
    "card.no_documents": "暂无在档材料。",
    "card.applicant_tag": "申请人",
    "card.holder_tag": "材料持有人",
    "card.conflicts": "{n} 份证照存在信息冲突，请核实",
    "card.avoidable": "本件有 {n} 份材料已在档，本可免于重复提交",
    "card.more_timeline": "仅显示最近 {n} 条",
    "timeline.out_of_role": "越权",
    "timeline.out_of_role_hint": "非该事项承办部门的更新：已记录，不计入办理状态",
    "days.left": "剩余 {n} 个工作日",
    "days.today": "今日到期",
    "days.over": "已超期 {n} 个工作日",
    "days.overdue": "已超期",
    "days.due_at": "{time} 前办结",
    "days.paused": "暂停计时",
    "days.closed": "已办结",
    "days.none": "—",
    "doc.reusable": "已在档，可复用",
    "doc.new": "本件收取",
    "doc.conflict": "信息冲突",
    "doc.expired": "已过期",
    "doc.times": "提交 {n} 次",
    "doc.avoidable": "{n} 次重复提交",
    "doc.first": "首次在档",
    "doc.number": "证照编号",
    "doc.conflict_detail": "与 {n} 份同号材料信息不一致（{fields}）：{others}",
    "doc.more": "等",
    "doc.holder_differs": "持有人不同",
    "col.department": "部门",
    "col.task": "事项",
    "col.status": "状态",
    "col.updated": "更新时间",
    "col.case": "办件编号",
    "col.service": "办理事项",
    "col.applicant": "申请人",
    "col.accepted": "受理时间",
    "col.sla": "时限状态",
    "col.days": "剩余",
    "col.progress": "部门进度",
    "board.window": "窗口",
    "board.all": "全部窗口",
    "board.date": "受理日期",
    "board.today": "今天",
    "board.count": "{n} 件",
    "board.empty": "该日没有受理的办件。",
    "board.latest": "最近一次受理在 {d}，查看该日",
    "board.summary": "{date} 受理 {n} 件",
    "board.fallback": "今天（{today}）暂无受理，显示最近有受理的一天：{d}",
    "lookup.case_id": "办件编号",
    "lookup.case_placeholder": "如 GZ20251009000123",
    "lookup.last4": "证件号码后四位",
    "lookup.last4_placeholder": "后四位",
    "lookup.button": "查询进度",
    "lookup.refresh": "刷新",
    "lookup.not_found": "未查询到办件，请核对办件编号和证件号码后四位。",
    "lookup.limited": "查询过于频繁，请一分钟后再试。",
    "lookup.error": "查询失败，请稍后再试。",
    "lookup.invalid": "请输入办件编号和证件号码后四位（4 位）。",
    "lookup.privacy": "为保护个人信息，姓名和证件号码已部分隐藏。",
    "lookup.steps": "办理进度",
    "lookup.departments": "部门办理情况",
    "lookup.due": "承诺办结",
    "lookup.footer": "如有疑问，请携带受理回执到政务服务中心咨询。",
  },
  en: {
    "app.title": "One Window · Counter",
    "app.subtitle": "Live cross-department case progress",
    "lookup.title": "Case progress lookup",
    "lookup.subtitle": "Enter the case number and the last four characters of the applicant's ID",
    "nav.search": "Find a case",
    "nav.board": "Window board",
    "nav.lookup": "Citizen lookup",
    "lang.switch": "中文",
    "conn.live": "Live",
    "conn.connecting": "Connecting…",
    "conn.lost": "Connection lost, reconnecting…",
    "search.placeholder": "Case number or applicant ID number",
    "search.button": "Search",
    "search.hint": "The ID number is used for the search only, never shown or stored.",
    "search.none": "No matching case.",
    "search.error": "The search failed; please try again.",
    "search.many": "This applicant has {n} cases; pick one:",
    "card.applicant": "Applicant",
    "card.acceptance": "Acceptance",
    "card.deadline": "Deadline",
    "card.accepted_at": "Accepted",
    "card.window": "Window",
    "card.channel": "Channel",
    "card.kind": "Case kind",
    "card.promise": "Promised",
    "card.due": "Due",
    "card.closed_at": "Closed",
    "card.paused_since": "Clock paused since",
    "card.version": "Events applied",
    "card.updated": "Updated",
    "card.provisional": "Holiday schedule not yet published: counted Monday to Friday for now",
    "card.tasks": "Progress by department",
    "card.task_progress": "{done} of {total} departments done",
    "card.timeline": "Timeline",
    "card.documents": "Documents on file",
    "card.no_documents": "No documents on file.",
    "card.applicant_tag": "Applicant",
    "card.holder_tag": "Holder",
    "card.conflicts": "{n} document(s) on file disagree with another record: please check",
    "card.avoidable": "{n} document(s) of this case were already on file",
    "card.more_timeline": "Showing the latest {n} only",
    "timeline.out_of_role": "out of role",
    "timeline.out_of_role_hint": "An update from a department the task does not belong to: recorded, not counted towards its status",
    "days.left": "{n} working days left",
    "days.today": "Due today",
    "days.over": "Overdue by {n} working days",
    "days.overdue": "Overdue",
    "days.due_at": "Due by {time}",
    "days.paused": "Clock paused",
    "days.closed": "Closed",
    "days.none": "—",
    "doc.reusable": "On file, reusable",
    "doc.new": "Received in this case",
    "doc.conflict": "Conflict",
    "doc.expired": "Expired",
    "doc.times": "submitted {n}×",
    "doc.avoidable": "{n} avoidable",
    "doc.first": "On file since",
    "doc.number": "Number",
    "doc.conflict_detail": "disagrees with {n} material(s) of the same number ({fields}): {others}",
    "doc.more": "…",
    "doc.holder_differs": "different holder",
    "col.department": "Department",
    "col.task": "Task",
    "col.status": "Status",
    "col.updated": "Updated",
    "col.case": "Case",
    "col.service": "Service",
    "col.applicant": "Applicant",
    "col.accepted": "Accepted",
    "col.sla": "SLA",
    "col.days": "Left",
    "col.progress": "Departments",
    "board.window": "Window",
    "board.all": "All windows",
    "board.date": "Accepted on",
    "board.today": "Today",
    "board.count": "{n}",
    "board.empty": "No cases accepted that day.",
    "board.latest": "Latest acceptance on {d}: show that day",
    "board.summary": "{n} cases accepted on {date}",
    "board.fallback": "Nothing accepted today ({today}) yet: showing the latest day with acceptances, {d}",
    "lookup.case_id": "Case number",
    "lookup.case_placeholder": "e.g. GZ20251009000123",
    "lookup.last4": "Last 4 of ID",
    "lookup.last4_placeholder": "last 4",
    "lookup.button": "Check progress",
    "lookup.refresh": "Refresh",
    "lookup.not_found": "No case found. Please check the case number and the last four characters.",
    "lookup.limited": "Too many attempts; please try again in a minute.",
    "lookup.error": "The lookup failed; please try again.",
    "lookup.invalid": "Enter the case number and the last 4 characters of the ID.",
    "lookup.privacy": "Name and ID number are partly hidden to protect personal data.",
    "lookup.steps": "Progress",
    "lookup.departments": "Departments",
    "lookup.due": "Promised by",
    "lookup.footer": "Questions? Bring your acceptance receipt to the service centre.",
  },
};

// Codes the API returns, by kind.
const CODES = {
  zh: {
    status: {
      PENDING_ACCEPTANCE: "待受理", ACCEPTED: "已受理", IN_PROGRESS: "办理中",
      SUPPLEMENT_REQUIRED: "待补正", SUSPENDED: "特别程序中", APPROVED: "已办结（准予）",
      REJECTED: "不予许可", PARTIALLY_APPROVED: "部分准予", WITHDRAWN: "已撤回",
    },
    task: {
      PENDING: "待接收", RECEIVED: "已接收", IN_REVIEW: "审查中", SUPPLEMENT_REQUESTED: "要求补正",
      SUPPLEMENT_RECEIVED: "已补正", SUSPENDED: "特别程序", RESUMED: "程序恢复", APPROVED: "准予",
      REJECTED: "不予", WITHDRAWN: "已撤回",
    },
    sla: {
      ON_TRACK: "正常", DUE_SOON: "即将到期", OVERDUE: "已超期", PAUSED: "暂停计时",
      ON_TIME: "按时办结", LATE: "超期办结",
    },
    event: {
      CaseAccepted: "窗口受理", TaskUpdated: "部门办理", MaterialSubmitted: "材料提交",
      CertificateIssued: "证照签发", CaseWithdrawn: "申请撤回",
    },
    kind: { IMMEDIATE: "即办件", PROMISED: "承诺件", JOINT: "联办件", REPORTED: "上报件" },
    channel: {
      COUNTER: "窗口", ONLINE: "网上办理", KIOSK: "自助终端", MOBILE: "移动端", MAIL: "邮寄",
      OTHER: "其他",
    },
    unit: { WORKING_DAY: "个工作日", NATURAL_DAY: "个自然日", HOUR: "小时" },
    idtype: { RESIDENT_ID: "居民身份证", USCC: "统一社会信用代码", PASSPORT: "护照", OTHER: "其他证件" },
    applicant: { PERSON: "个人", ORGANIZATION: "企业" },
    material: {
      ID_CARD: "身份证", BUSINESS_LICENSE: "营业执照", PROPERTY_CERT: "不动产权证书",
      MARRIAGE_CERT: "婚姻登记证明", HOUSEHOLD_REGISTER: "户口簿", BIRTH_CERT: "出生医学证明",
      CONTRACT: "合同", LEASE_CONTRACT: "租赁合同", ARTICLES: "公司章程", FLOOR_PLAN: "平面图",
      FOOD_BUSINESS_LICENSE: "食品经营许可证",
    },
  },
  en: {
    status: {
      PENDING_ACCEPTANCE: "Awaiting acceptance", ACCEPTED: "Accepted", IN_PROGRESS: "In progress",
      SUPPLEMENT_REQUIRED: "Supplement required", SUSPENDED: "Suspended", APPROVED: "Approved",
      REJECTED: "Rejected", PARTIALLY_APPROVED: "Partially approved", WITHDRAWN: "Withdrawn",
    },
    task: {
      PENDING: "Pending", RECEIVED: "Received", IN_REVIEW: "In review",
      SUPPLEMENT_REQUESTED: "Supplement requested", SUPPLEMENT_RECEIVED: "Supplement received",
      SUSPENDED: "Suspended", RESUMED: "Resumed", APPROVED: "Approved", REJECTED: "Rejected",
      WITHDRAWN: "Withdrawn",
    },
    sla: {
      ON_TRACK: "On track", DUE_SOON: "Due soon", OVERDUE: "Overdue", PAUSED: "Paused",
      ON_TIME: "On time", LATE: "Late",
    },
    event: {
      CaseAccepted: "Accepted", TaskUpdated: "Department update", MaterialSubmitted: "Document",
      CertificateIssued: "Certificate issued", CaseWithdrawn: "Withdrawn",
    },
    kind: { IMMEDIATE: "Immediate", PROMISED: "Promised", JOINT: "Joint", REPORTED: "Reported" },
    channel: {
      COUNTER: "Counter", ONLINE: "Online", KIOSK: "Kiosk", MOBILE: "Mobile", MAIL: "Mail",
      OTHER: "Other",
    },
    unit: { WORKING_DAY: "working days", NATURAL_DAY: "calendar days", HOUR: "hours" },
    idtype: { RESIDENT_ID: "Resident ID", USCC: "USCC", PASSPORT: "Passport", OTHER: "Other ID" },
    applicant: { PERSON: "Person", ORGANIZATION: "Organization" },
    material: {
      ID_CARD: "ID card", BUSINESS_LICENSE: "Business licence", PROPERTY_CERT: "Property certificate",
      MARRIAGE_CERT: "Marriage certificate", HOUSEHOLD_REGISTER: "Household register",
      BIRTH_CERT: "Birth certificate", CONTRACT: "Contract", LEASE_CONTRACT: "Lease",
      ARTICLES: "Articles of association", FLOOR_PLAN: "Floor plan",
      FOOD_BUSINESS_LICENSE: "Food business licence",
    },
  },
};

const KEY = "onewindow.lang";
const listeners = [];

function stored() {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export let lang = stored() === "en" ? "en" : "zh";

/** The UI string `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

/** The label of an API code of `kind` (status, task, sla, event ...); the code itself if unknown. */
export function code(kind, value) {
  if (value === null || value === undefined) return "";
  return CODES[lang][kind]?.[value] ?? value;
}

/** Fill every [data-i18n] (text), [data-i18n-placeholder] and [data-i18n-title] under root. */
export function applyI18n(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

export function setLang(next) {
  lang = next === "en" ? "en" : "zh";
  try {
    localStorage.setItem(KEY, lang);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  applyI18n();
  for (const fn of listeners) fn(lang);
}

/** Call `fn(lang)` after every switch (to re-render what was drawn from data). */
export function onLangChange(fn) {
  listeners.push(fn);
}

/** Wire a button to toggle the language. */
export function langToggle(button) {
  button.addEventListener("click", () => setLang(lang === "zh" ? "en" : "zh"));
}
