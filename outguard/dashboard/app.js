// The dashboard: sign-in, tabs, the live feed (from /api/events) and page refreshes.

import { ApiError, api, clearToken, setToken, stream, token } from "./api.js";
import { columnChart } from "./charts.js";
import { applyLabels, reason, t, toggleLanguage } from "./i18n.js";
import * as pages from "./pages.js";

const FEED_MAX = 200;
const BUCKET_S = 10, BUCKETS = 30;
const state = { page: "live", me: null, stop: null, list: "", offset: 0, range: "hour",
                streamUp: false };
// counters mean "today" (the browser's day): seeded from the call log's report, then
// counted from the stream; the feed starts from the recent call log
const live = { allowed: 0, blocked: 0, buckets: new Map(), day: 0, countedUntil: 0,
               seeded: false, pending: [], events: [] };

function $(id) { return document.getElementById(id); }

// -- sign-in --------------------------------------------------------------------------

async function signIn() {
  try {
    state.me = await api("GET", "/api/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { clearToken(); showLogin(true); return; }
    throw e;
  }
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  document.body.dataset.role = state.me.role;
  live.seeded = false;
  startStream();  // events arriving before the seed is in are held, then replayed
  await seedLive();
  show(location.hash.slice(1) || "live");
}

function showLogin(failed) {
  $("login").hidden = false;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  for (const page of document.querySelectorAll(".page")) page.hidden = true;
  $("login-error").hidden = !failed;
  $("login-error").textContent = t("login.failed");
}

// -- pages ----------------------------------------------------------------------------

const RENDER = {
  live: async () => {
    const stats = await api("GET", "/api/stats");
    $("live-calls").textContent = stats.live_calls;
    drawLive();
  },
  overview: () => pages.overview(state.range),
  accounts: () => pages.parties("account", $("accounts-table"), state.me.role === "admin", () => render()),
  callers: () => pages.parties("caller_id", $("callers-table"), false, () => render()),
  appeals: () => pages.appeals(state.me.role !== "readonly", () => render()),
  lists: () => pages.lists(state),
};

function show(page) {
  if (!RENDER[page]) page = "live";
  state.page = page;
  history.replaceState(null, "", `#${page}`);
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.page === page);
  }
  render();
}

async function render() {
  try {
    await RENDER[state.page]();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { clearToken(); showLogin(true); return; }
    pages.flash(`${t("error")}: ${e.message}`, true);
  }
}

// -- the live feed --------------------------------------------------------------------

function startStream() {
  if (state.stop) state.stop();
  state.stop = stream(onEvent, (up) => {
    state.streamUp = up;
    showStreamState();
  });
}

function showStreamState() {
  $("stream-state").textContent = t(state.streamUp ? "stream.live" : "stream.down");
  $("stream-state").className = state.streamUp ? "ok" : "warn";
}

function onEvent(type, ev) {
  if (!live.seeded && (type === "decision" || type === "outcome")) {
    live.pending.push([type, ev]);
    return;
  }
  if (type === "decision") addDecision(ev);
  else if (type === "outcome") addOutcome(ev);
  else if (type === "enforcement" && ["accounts", "callers", "appeals"].includes(state.page)) render();
}

function startOfToday() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return Math.floor(d.getTime() / 1000);
}

async function seedLive() {
  const since = startOfToday();
  const [report, calls] = await Promise.all([
    api("GET", `/api/report?by=day&since=${since}`),
    api("GET", `/api/calls?since=${since}&limit=${FEED_MAX}`)]);
  live.day = since;
  live.allowed = report.total.allowed;
  live.blocked = report.total.blocked;
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
  for (const [type, ev] of held) onEvent(type, ev);
}

function showCounts() {
  $("live-allowed").textContent = live.allowed;
  $("live-blocked").textContent = live.blocked;
}

function remember(ev) {
  live.events.unshift(ev);
  if (live.events.length > FEED_MAX) live.events.length = FEED_MAX;
  const bucket = Math.floor(ev.at / BUCKET_S);
  const counts = live.buckets.get(bucket) || { allow: 0, block: 0 };
  counts[ev.verdict === "allow" ? "allow" : "block"] += 1;
  live.buckets.set(bucket, counts);
}

function addDecision(ev) {
  if (live.events.some((e) => e.decision_id === ev.decision_id)) return;  // seeded already
  if (ev.at >= live.day + 86400) {  // a new day: today's counters start again
    live.day = startOfToday();
    live.allowed = live.blocked = 0;
  }
  if (ev.at > live.countedUntil) live[ev.verdict === "allow" ? "allowed" : "blocked"] += 1;
  showCounts();
  remember(ev);
  const feed = $("live-feed");
  feed.prepend(feedRow(ev));
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  if (state.page === "live") drawLive();
}

function feedRow(ev) {
  const allowed = ev.verdict === "allow";
  return pages.h("tr", { "data-decision": ev.decision_id, class: allowed ? "allow" : "block" },
    pages.h("td", {}, new Date(ev.at * 1000).toLocaleTimeString(undefined, { hour12: false })),
    pages.h("td", {}, pages.h("span", { class: `badge ${ev.verdict}` }, t(`verdict.${ev.verdict}`))),
    pages.h("td", {}, ev.account), pages.h("td", {}, ev.caller_id || "–"),
    pages.h("td", {}, ev.destination),
    pages.h("td", { title: ev.message || "" }, reason(ev.reason) + (ev.rule ? ` · ${ev.rule}` : "")),
    pages.h("td", { class: "outcome" }, outcomeText(ev)),
    pages.h("td", { class: "num" }, ev.decision_us));
}

function outcomeText(ev) {
  if (ev.verdict !== "allow") return "–";
  if (!ev.outcome) return "…";
  return ev.outcome.answered
    ? t("outcome.answered", { s: Math.round(ev.outcome.duration) }) : t("outcome.unanswered");
}

// every row again (the language switch: verdicts, reasons, outcomes in the new language)
function drawFeed() {
  $("live-feed").replaceChildren(...live.events.map(feedRow));
}

function addOutcome(ev) {
  const seen = live.events.find((e) => e.decision_id === ev.decision_id);
  if (seen) seen.outcome = { answered: !!ev.answered, duration: ev.duration || 0 };
  const row = document.querySelector(`#live-feed tr[data-decision="${CSS.escape(ev.decision_id)}"]`);
  if (!row || !seen) return;
  row.querySelector(".outcome").textContent = outcomeText(seen);
}

function drawLive() {
  const now = Math.floor(Date.now() / 1000 / BUCKET_S);
  const labels = [], allow = [], block = [];
  for (let b = now - BUCKETS + 1; b <= now; b++) {
    const counts = live.buckets.get(b) || { allow: 0, block: 0 };
    labels.push(new Date(b * BUCKET_S * 1000).toLocaleTimeString(undefined, { hour12: false }).slice(0, 5));
    allow.push(counts.allow);
    block.push(counts.block);
  }
  for (const key of live.buckets.keys()) if (key < now - BUCKETS) live.buckets.delete(key);
  columnChart($("live-chart"), labels, [
    { name: t("verdict.allow"), values: allow, cls: 1 },
    { name: t("verdict.block"), values: block, cls: 4 }]);
}

// -- wiring ---------------------------------------------------------------------------

function wire() {
  applyLabels();
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token-input").value.trim());
    $("token-input").value = "";
    signIn();
  });
  $("logout").addEventListener("click", () => {
    if (state.stop) state.stop();
    clearToken();
    showLogin(false);
  });
  $("lang").addEventListener("click", () => {
    toggleLanguage();
    if (state.me) { drawFeed(); showStreamState(); render(); }
  });
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => show(button.dataset.page));
  }
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => { state.range = button.dataset.range; render(); });
  }
  $("list-search").addEventListener("submit", (e) => {
    e.preventDefault(); state.offset = 0; pages.entries(state).catch((err) => pages.flash(err.message, true));
  });
  setInterval(() => { if (state.me && ["live", "overview"].includes(state.page)) render(); }, 15000);
  if (token()) signIn(); else showLogin(false);
}

wire();
