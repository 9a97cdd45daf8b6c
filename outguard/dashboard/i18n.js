// Labels in English and Chinese; the choice is kept in localStorage.

const LABELS = {
  en: {
    "subtitle": "outbound call screening",
    "tab.live": "Live", "tab.overview": "Overview", "tab.accounts": "Accounts",
    "tab.callers": "Caller IDs", "tab.appeals": "Appeals", "tab.lists": "Lists",
    "logout": "Log out",
    "login.title": "Sign in with an API token",
    "login.help": "Create one with: outguard tokens create USER. It is kept in this tab only.",
    "login.button": "Sign in", "login.failed": "The token was refused",
    "stat.allowed": "Allowed today", "stat.blocked": "Blocked today", "stat.live_calls": "Calls in progress",
    "stat.stream": "Stream", "stat.decisions": "Decisions since start",
    "stat.p99": "Decision time p99", "stat.connect": "Connect rate", "stat.attempts": "Attempts",
    "stat.answered": "Answered", "stat.complaints": "Complaints",
    "stream.live": "live", "stream.down": "reconnecting",
    "live.rate": "Decisions, last 5 minutes", "live.feed": "Live decisions",
    "col.time": "Time", "col.verdict": "Verdict", "col.account": "Account",
    "col.caller_id": "Caller ID", "col.destination": "Destination", "col.reason": "Reason",
    "col.outcome": "Outcome", "col.tenant": "Tenant", "col.state": "State",
    "col.attempts": "Attempts", "col.connect_rate": "Connect rate",
    "col.short_ratio": "Short calls", "col.complaints": "Complaints", "col.marks": "Marks",
    "col.until": "Until", "col.party": "Party", "col.text": "Appeal", "col.evidence": "Evidence",
    "col.created": "Filed", "col.decision": "Decision", "col.reviewer": "Reviewer",
    "col.name": "Name", "col.kind": "Kind", "col.entries": "Entries", "col.number": "Number",
    "col.expires": "Expires", "col.source": "Source", "col.actions": "",
    "verdict.allow": "allowed", "verdict.block": "blocked",
    "outcome.answered": "answered {s} s", "outcome.unanswered": "not answered",
    "state.active": "active", "state.suspended": "suspended", "state.disabled": "disabled",
    "state.unknown": "unknown", "state.pending": "pending", "state.approved": "approved",
    "state.rejected": "rejected",
    "range.today": "Last 24 hours", "range.days": "Last 14 days",
    "chart.calls": "Calls, allowed and answered", "chart.connect": "Connect rate (接通率)",
    "chart.reasons": "Blocks by reason", "series.attempts": "attempts",
    "series.allowed": "allowed", "series.answered": "answered", "series.connect": "connect rate",
    "accounts.title": "Accounts: risk and status", "callers.title": "Caller IDs: risk and status",
    "appeals.pending": "Waiting for review", "appeals.decided": "Decided",
    "appeals.approve": "Approve", "appeals.reject": "Reject",
    "appeals.decision": "reviewer's reasoning", "appeals.need_reason": "Write the reasoning first",
    "appeals.done": "Appeal {id}: {state}",
    "action.suspend": "Suspend 24 h", "action.lift": "Lift", "action.reason": "Reason?",
    "lists.title": "Lists", "lists.entries": "Entries", "lists.search": "digits to search",
    "lists.go": "Search", "lists.more": "more…",
    "empty": "nothing yet", "error": "Error",
  },
  zh: {
    "subtitle": "外呼风控",
    "tab.live": "实时", "tab.overview": "概览", "tab.accounts": "坐席账号",
    "tab.callers": "主叫号码", "tab.appeals": "申诉", "tab.lists": "号码名单",
    "logout": "退出",
    "login.title": "使用 API 令牌登录",
    "login.help": "创建令牌：outguard tokens create 用户名。令牌只保存在本标签页。",
    "login.button": "登录", "login.failed": "令牌无效",
    "stat.allowed": "今日放行", "stat.blocked": "今日拦截", "stat.live_calls": "通话中",
    "stat.stream": "实时流", "stat.decisions": "启动以来判定数",
    "stat.p99": "判定耗时 p99", "stat.connect": "接通率", "stat.attempts": "呼叫次数",
    "stat.answered": "接通", "stat.complaints": "投诉",
    "stream.live": "已连接", "stream.down": "重连中",
    "live.rate": "最近 5 分钟判定", "live.feed": "实时判定",
    "col.time": "时间", "col.verdict": "结果", "col.account": "账号",
    "col.caller_id": "主叫", "col.destination": "被叫", "col.reason": "原因",
    "col.outcome": "通话结果", "col.tenant": "机构", "col.state": "状态",
    "col.attempts": "呼叫", "col.connect_rate": "接通率",
    "col.short_ratio": "短通话占比", "col.complaints": "投诉", "col.marks": "标记",
    "col.until": "截止", "col.party": "对象", "col.text": "申诉内容", "col.evidence": "证据",
    "col.created": "提交时间", "col.decision": "审核意见", "col.reviewer": "审核人",
    "col.name": "名称", "col.kind": "类型", "col.entries": "号码数", "col.number": "号码",
    "col.expires": "过期", "col.source": "来源", "col.actions": "",
    "verdict.allow": "放行", "verdict.block": "拦截",
    "outcome.answered": "接通 {s} 秒", "outcome.unanswered": "未接通",
    "state.active": "正常", "state.suspended": "封停", "state.disabled": "禁用",
    "state.unknown": "未知", "state.pending": "待审核", "state.approved": "已通过",
    "state.rejected": "已驳回",
    "range.today": "最近 24 小时", "range.days": "最近 14 天",
    "chart.calls": "呼叫、放行与接通", "chart.connect": "接通率",
    "chart.reasons": "拦截原因", "series.attempts": "呼叫",
    "series.allowed": "放行", "series.answered": "接通", "series.connect": "接通率",
    "accounts.title": "坐席账号：风险与状态", "callers.title": "主叫号码：风险与状态",
    "appeals.pending": "待审核", "appeals.decided": "已处理",
    "appeals.approve": "通过（解封）", "appeals.reject": "驳回",
    "appeals.decision": "审核意见", "appeals.need_reason": "请先填写审核意见",
    "appeals.done": "申诉 {id}：{state}",
    "action.suspend": "封停 24 小时", "action.lift": "解封", "action.reason": "原因？",
    "lists.title": "名单", "lists.entries": "号码", "lists.search": "输入号码片段",
    "lists.go": "搜索", "lists.more": "更多…",
    "empty": "暂无数据", "error": "错误",
  },
};

let lang = localStorage.getItem("outguard.lang") ||
  (navigator.language && navigator.language.startsWith("zh") ? "zh" : "en");

export function language() { return lang; }

export function t(key, values) {
  const own = LABELS[lang] || LABELS.en;
  let text = key in own ? own[key] : key in LABELS.en ? LABELS.en[key] : key;
  for (const [name, value] of Object.entries(values || {})) {
    text = text.replace(`{${name}}`, String(value));
  }
  return text;
}

export function applyLabels(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  const button = document.getElementById("lang");
  if (button) button.textContent = lang === "zh" ? "English" : "中文";
}

export function toggleLanguage() {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("outguard.lang", lang);
  applyLabels();
}

// A reason code in words where we know it (falls back to the code).
const REASONS_ZH = {
  ok: "放行", dnc_listed: "免打扰名单", blacklisted: "黑名单", complaint_listed: "投诉名单",
  register_listed: "拒接登记", quiet_hours: "非呼叫时段", holiday: "节假日",
  rate_cap: "频次超限", destination_cap: "同号频次超限", concurrency_cap: "并发超限",
  distinct_callees_cap: "外呼号码数超限", account_suspended: "账号封停",
  account_disabled: "账号禁用", caller_id_suspended: "主叫封停",
  caller_id_unverified: "主叫未实名", caller_id_service_number: "禁用服务号码外呼",
  destination_invalid: "号码无效", tenant_suspended: "机构封停",
};

export function reason(code) {
  return lang === "zh" && REASONS_ZH[code] ? `${REASONS_ZH[code]} (${code})` : code;
}
