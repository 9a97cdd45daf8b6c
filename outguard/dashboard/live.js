// The live page: today's counters and the feed, seeded from the call log and then
// counted from the event stream (events are taken whatever page is on screen).

import { api } from "./api.js";
import { columnChart } from "./charts.js";
import { language, reason, t } from "./i18n.js";
import { page } from "./registry.js";
import { $, h } from "./ui.js";

const FEED_MAX = 200;
const BUCKET_S = 10, BUCKETS = 30;
// counters mean "today" (the browser's day): seeded from the call log's report, then
// counted from the stream; the feed starts from the recent call log
const live = { allowed: 0, blocked: 0, failed: 0, buckets: new Map(), day: 0, countedUntil: 0,
               seeded: false, pending: [], events: [] };

page({
  id: "live", label: "tab.live", order: 0, static: true,
  render: async () => {
    const stats = await api("GET", "/api/stats");
    $("live-calls").textContent = stats.live_calls;
    drawFeed();
    showStreamState();
    drawLive();
  },
});

// -- the live feed --------------------------------------------------------------------

let streamUp = false;

export function showStreamState(up = streamUp) {
  streamUp = up;
  $("stream-state").textContent = t(streamUp ? "stream.live" : "stream.down");
  $("stream-state").className = streamUp ? "ok" : "warn";
}

/** A call event from the stream: counted and shown whatever page is on screen. */
export function liveEvent(type, ev) {
  if (!live.seeded && (type === "decision" || type === "outcome")) {
    live.pending.push([type, ev]);
    return;
  }
  if (type === "decision") addDecision(ev);
  else if (type === "outcome") addOutcome(ev);
}

export function unseed() { live.seeded = false; }

function startOfToday() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return Math.floor(d.getTime() / 1000);
}

export async function seedLive() {
  const since = startOfToday();
  const [report, calls] = await Promise.all([
    api("GET", `/api/report?by=day&since=${since}`),
    api("GET", `/api/calls?since=${since}&limit=${FEED_MAX}`)]);
  live.day = since;
  live.allowed = report.total.allowed;
  live.blocked = report.total.blocked;
  live.failed = report.total.failed;
  live.countedUntil = Date.parse(report.until) / 1000 - 1;  // the report's "now"
  live.events = [];
  live.buckets.clear();
  for (const c of calls.slice().reverse()) {
    const ev = { ...c, at: Date.parse(c.at) / 1000 };
    if (c.answered_at || c.ended_at) ev.outcome = { answered: !!c.answered_at, duration: c.duration || 0 };
    remember(ev);
  }
  drawFeed();
  showCounts();
  live.seeded = true;
  const held = live.pending;
  live.pending = [];
  for (const [type, ev] of held) liveEvent(type, ev);
}

function showCounts() {
  $("live-allowed").textContent = live.allowed;
  $("live-blocked").textContent = live.blocked;
  $("live-failed").textContent = live.failed;
}

// the counter, chart series and row style of a verdict: allow | block | failed (outguard
// could not screen the call; the failure policy answered it)
const KEYS = { allow: "allowed", block: "blocked", failed: "failed" };
const kindOf = (ev) => (ev.verdict in KEYS ? ev.verdict : "block");
// whether the call was dialled: allowed, or failed and let through by fail-open
const wentOut = (ev) => ev.verdict === "allow" || (ev.verdict === "failed" && ev.rule === "fail-open");

function remember(ev) {
  live.events.unshift(ev);
  if (live.events.length > FEED_MAX) live.events.length = FEED_MAX;
  const bucket = Math.floor(ev.at / BUCKET_S);
  const counts = live.buckets.get(bucket) || { allow: 0, block: 0, failed: 0 };
  counts[kindOf(ev)] += 1;
  live.buckets.set(bucket, counts);
}

function addDecision(ev) {
  if (live.events.some((e) => e.decision_id === ev.decision_id)) return;  // seeded already
  if (ev.at >= live.day + 86400) {  // a new day: today's counters start again
    live.day = startOfToday();
    live.allowed = live.blocked = live.failed = 0;
  }
  if (ev.at > live.countedUntil) live[KEYS[kindOf(ev)]] += 1;
  showCounts();
  remember(ev);
  const feed = $("live-feed");
  feed.prepend(feedRow(ev));
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  if (!$("page-live").hidden) drawLive();
}

function feedRow(ev) {
  const clock = new Date(ev.at * 1000).toLocaleTimeString(language() === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  return h("tr", { "data-decision": ev.decision_id, class: kindOf(ev) },
    h("td", {}, clock),
    h("td", {}, h("span", { class: `badge ${ev.verdict}` }, t(`verdict.${ev.verdict}`))),
    h("td", { class: "pbx" }, ev.pbx || "–"),
    h("td", {}, ev.account), h("td", {}, ev.caller_id || "–"),
    h("td", {}, ev.destination),
    h("td", { title: ev.message || "" }, reason(ev.reason) + (ev.rule ? ` · ${ev.rule}` : "")),
    h("td", { class: "outcome" }, outcomeText(ev)),
    h("td", { class: "num" }, ev.decision_us));
}

function outcomeText(ev) {
  if (!wentOut(ev)) return "–";
  if (!ev.outcome) return "…";
  return ev.outcome.answered
    ? t("outcome.answered", { s: Math.round(ev.outcome.duration) }) : t("outcome.unanswered");
}

// every row again (the language switch: verdicts, reasons, outcomes in the new language)
export function drawFeed() {
  $("live-feed").replaceChildren(...live.events.map(feedRow));
}

function addOutcome(ev) {
  const seen = live.events.find((e) => e.decision_id === ev.decision_id);
  if (seen) seen.outcome = { answered: !!ev.answered, duration: ev.duration || 0 };
  const row = document.querySelector(`#live-feed tr[data-decision="${CSS.escape(ev.decision_id)}"]`);
  if (!row || !seen) return;
  row.querySelector(".outcome").textContent = outcomeText(seen);
}

export function drawLive() {
  const now = Math.floor(Date.now() / 1000 / BUCKET_S);
  const labels = [], allow = [], block = [], failed = [], minute = [];
  const clock = (at, seconds) => new Date(at * 1000).toLocaleTimeString(
    language() === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined, hour12: false });
  for (let b = now - BUCKETS + 1; b <= now; b++) {
    const counts = live.buckets.get(b) || { allow: 0, block: 0, failed: 0 };
    labels.push(clock(b * BUCKET_S, true));
    minute.push((b * BUCKET_S) % 60 === 0 ? clock(b * BUCKET_S, false) : "");
    allow.push(counts.allow);
    block.push(counts.block);
    failed.push(counts.failed);
  }
  for (const key of live.buckets.keys()) if (key < now - BUCKETS) live.buckets.delete(key);
  // one label a minute (the buckets are 10 s); each column's own time on hover
  columnChart($("live-chart"), labels, [
    { name: t("verdict.allow"), values: allow, cls: 1 },
    { name: t("verdict.block"), values: block, cls: 4 },
    { name: t("verdict.failed"), values: failed, cls: 3 }], { axisLabel: (i) => minute[i] });
}
