// The caller-ID page's health part: each caller ID's connect rate against its own
// baseline, its daily figures, the early warning, and the remediation tasks (号码认证 /
// 标记申诉) that a reviewer works and closes here. Never a switch to another caller ID.

import { api, heavy } from "./api.js";
import { addLabelPairs, t } from "./i18n.js";
import { fmt, flash, h, pct, table, time } from "./ui.js";

addLabelPairs({
  "health.title": ["Caller-ID health: connect rate against its own history", "主叫号码健康：接通率对比自身历史"],
  "health.tasks": [
    "Remediation tasks (number authentication / mis-mark appeal)",
    "整改任务（号码认证 / 标记申诉）"],
  "health.rate": ["Connect rate now", "当前接通率"],
  "health.baseline": ["Baseline", "基线"],
  "health.drop": ["Drop", "降幅"],
  "health.days": ["Connect rate per day", "每日接通率"],
  "health.warning": ["Warning", "预警"],
  "health.cap": ["Caps", "频次上限"],
  "health.task": ["Task", "任务"],
  "health.warn_yes": ["sharp drop", "接通率骤降"],
  "health.warn_no": ["–", "–"],
  "health.throttled": ["× {f} (task {id})", "× {f}（任务 {id}）"],
  "health.whole": ["whole", "正常"],
  "health.reason": ["Why", "原因"],
  "health.steps": ["Steps", "整改步骤"],
  "health.notes": ["Done so far", "处理记录"],
  "health.opened": ["Opened", "创建时间"],
  "health.note": ["Record step", "记录进展"],
  "health.close": ["Close task", "关闭任务"],
  "health.note_ph": ["step taken / resolution", "已做的步骤 / 处理结果"],
  "health.need_text": ["Write the step or the resolution first", "请先填写步骤或处理结果"],
  "health.noted": ["Task {id}: step recorded", "任务 {id}：已记录进展"],
  "health.closed": ["Task {id} closed: caps whole again", "任务 {id} 已关闭：频次上限已恢复"],
  "health.settings": [
    "Warns when the connect rate over {window} falls {drop} below its own {baseline} baseline (at least {min} ended calls); caps × {factor} while the task is open.",
    "{window} 内接通率比自身 {baseline} 基线下降 {drop} 以上（至少 {min} 通已结束呼叫）即预警；任务未关闭期间频次上限 × {factor}。"],
  "state.open": ["open", "待处理"],
  "state.working": ["working", "处理中"],
  "state.closed": ["closed", "已关闭"],
  "health.step_find": [
    "Find out which marking platforms label the number, and how: call test phones with different security apps (360 手机卫士, 腾讯手机管家, 百度手机卫士, 搜狗号码通, 电话邦) or use the platforms' look-up services.",
    "查明哪些标记平台如何标记该号码：用装有不同安全软件（360 手机卫士、腾讯手机管家、百度手机卫士、搜狗号码通、电话邦）的测试手机拨打，或使用各平台的号码查询服务。"],
  "health.step_auth": [
    "Number authentication (号码认证): register the number with the marking platforms' enterprise number services and the carrier, with the business licence and the number's allocation certificate.",
    "号码认证：凭营业执照和号码使用证明，在各标记平台的企业号码服务及运营商处登记认证该号码。"],
  "health.step_appeal": [
    "Mis-mark appeal (标记申诉): where the label is wrong, appeal to each platform with evidence (business licence, proof the tenant owns the number, call records); platforms review within a few working days.",
    "标记申诉：标记有误时，向各平台提交申诉及证据（营业执照、号码归属证明、通话记录）；平台一般在数个工作日内审核。"],
  "health.step_review": [
    "Review what the number has been doing: lists, calling hours, calls per callee, short calls, complaints. The caps stay reduced until the task is closed.",
    "复查该号码的外呼情况：名单、呼叫时段、同一被叫的呼叫频次、短通话、投诉。任务关闭前频次上限保持下调。"],
}, { caller_id_throttled: "主叫限流" });

// the server's steps (outguard/enforcement/health.py REMEDIATION_STEPS), in the page's language
const STEPS = ["health.step_find", "health.step_auth", "health.step_appeal", "health.step_review"];

function span(seconds) {
  return seconds % 86400 === 0 && seconds > 86400 ? `${seconds / 86400}d` : `${seconds / 3600}h`;
}

// The caller-ID page's part (parties.js: extra.top draws the cards first, extra.after
// fills them; ctx as in registry.js).
export function healthPart(ctx) {
  const cards = [h("div", { class: "card" }), h("div", { class: "card" })];
  return { top: () => cards, after: () => callerHealth(ctx, cards) };
}

async function callerHealth(ctx, [healthCard, taskCard]) {
  const [data, tasks] = await Promise.all([
    heavy("GET", "/api/caller-ids/health?days=7"), api("GET", "/api/health-tasks?state=active")]);
  const s = data.settings, def = data.definitions || {};
  const settings = h("p", { id: "health-settings", class: "muted" }, t("health.settings", {
    window: span(s.window_s), baseline: span(s.baseline_s), drop: `${Math.round(s.drop * 100)}%`,
    min: s.min_calls, factor: s.cap_factor }));
  const rows = h("div", { id: "callers-health" }, table([
    { label: "col.caller_id", key: "caller_id" },
    { label: "col.tenant", key: "tenant" },
    { label: "health.rate", title: def.connect_rate, render: (r) => pct(r.connect_rate) },
    { label: "health.baseline", render: (r) => pct(r.baseline_connect_rate) },
    { label: "health.drop", render: (r) => (r.drop == null ? "–" : `${Math.round(r.drop * 100)}%`) },
    { label: "health.days", render: (r) => h("span", { class: "days" }, r.days.map((d) =>
      h("span", { class: "day", title: `${d.day}: ${d.answered}/${d.ended}` }, pct(d.connect_rate)))) },
    { label: "col.short_ratio", title: def.short_call_ratio, render: (r) => pct(r.short_call_ratio) },
    { label: "col.complaints", title: def.complaints, render: (r) => fmt(r.complaints) },
    { label: "col.marks", title: def.marks, render: (r) => fmt(r.marks) },
    { label: "health.warning", render: (r) => h("span", { class: r.warning ? "badge block" : "" },
      t(r.warning ? "health.warn_yes" : "health.warn_no")) },
    { label: "health.cap", render: (r) => (r.task == null ? t("health.whole")
      : h("span", { class: "badge pending" }, t("health.throttled", { f: r.cap_factor, id: r.task }))) },
  ], data.rows, (r) => ({ "data-caller": r.caller_id, "data-warning": String(r.warning),
                         "data-task": r.task == null ? "" : String(r.task) })));
  const columns = [
    { label: "col.caller_id", key: "caller_id" },
    { label: "col.state", render: (k) => h("span", { class: `badge ${k.state === "open" ? "pending" : "active"}` }, t(`state.${k.state}`)) },
    { label: "health.opened", render: (k) => time(k.opened_at) },
    { label: "health.reason", key: "reason" },
    { label: "health.steps", render: (k) => h("ol", { class: "steps" }, k.steps.map((x, i) =>
      h("li", {}, STEPS[i] ? t(STEPS[i]) : x))) },
    { label: "health.notes", render: (k) => h("ul", { class: "notes" }, k.notes.map((n) =>
      h("li", {}, `${time(n.at)} ${n.by}: ${n.text}`))) },
  ];
  if (ctx.can("reviewer")) columns.push({ label: "col.actions", render: (k) => work(k, ctx.rerender) });
  const taskTable = h("div", { id: "health-tasks" },
    table(columns, tasks, (k) => ({ "data-task-id": k.id, "data-state": k.state })));
  healthCard.replaceChildren(h("h3", { id: "health-title" }, t("health.title")), settings, rows);
  taskCard.replaceChildren(h("h3", {}, t("health.tasks")), taskTable);
}

function work(task, reload) {
  const input = h("input", { class: "task-input", placeholder: t("health.note_ph") });
  const act = (verb) => async () => {
    const text = input.value.trim();
    if (!text) { flash(t("health.need_text"), true); input.focus(); return; }
    try {
      const body = verb === "note" ? { text } : { resolution: text };
      const done = await api("POST", `/api/health-tasks/${task.id}/${verb}`, body);
      flash(t(verb === "note" ? "health.noted" : "health.closed", { id: done.id }));
      await reload();
    } catch (e) { flash(`${t("error")}: ${e.message}`, true); }
  };
  return h("span", { class: "review" }, input,
    h("button", { class: "note", onclick: act("note") }, t("health.note")),
    h("button", { class: "approve close", onclick: act("close") }, t("health.close")));
}
