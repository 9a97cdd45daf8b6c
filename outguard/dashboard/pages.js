// The pages other than the live feed: overview charts, accounts and caller IDs with their
// risk figures, the appeal queue, and lists with search.

import { api } from "./api.js";
import { barChart, lineChart, ratioBar } from "./charts.js";
import { reason, t } from "./i18n.js";

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function table(columns, rows, rowAttrs) {
  if (!rows.length) return h("p", { class: "muted" }, t("empty"));
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", c.title ? { title: c.title } : {}, t(c.label))))),
    h("tbody", {}, rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {},
      columns.map((c) => h("td", { class: c.cls || "" }, c.render ? c.render(row) : fmt(row[c.key])))))));
}

export function fmt(value) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(2);
  return String(value);
}

export function time(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

function pct(value) { return value == null ? "–" : `${(value * 100).toFixed(1)}%`; }

function badge(state) { return h("span", { class: `badge ${state}` }, t(`state.${state}`)); }

export function flash(message, isError) {
  const node = document.getElementById("flash");
  node.textContent = message;
  node.className = isError ? "flash error" : "flash";
  node.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { node.hidden = true; }, 4000);
}

// -- overview -------------------------------------------------------------------------

export async function overview(range) {
  const by = range === "day" ? "day" : "hour";
  const days = range === "day" ? 14 : 1;
  const [report, stats] = await Promise.all([
    api("GET", `/api/report?by=${by}&days=${days}`), api("GET", "/api/stats")]);
  const rows = report.rows;
  const labels = rows.map((r) => (by === "hour" ? r.hour.slice(11, 16) : r.day.slice(5)));
  const total = report.total;
  const cards = document.getElementById("overview-cards");
  const def = report.definitions || {};  // one definition per figure (outguard/figures.py)
  cards.replaceChildren(
    card("stat.attempts", total.attempts, def.attempts),
    card("stat.answered", total.answered, def.answered),
    card("stat.connect", pct(total.connect_rate), def.connect_rate),
    card("stat.complaints", total.complaints, def.complaints),
    card("stat.decisions", stats.decisions),
    card("stat.p99", stats.latency_us.p99 == null ? "–" : `${stats.latency_us.p99} µs`));
  lineChart(document.getElementById("chart-calls"), labels, [
    { name: t("series.attempts"), values: rows.map((r) => r.attempts) },
    { name: t("series.allowed"), values: rows.map((r) => r.allowed) },
    { name: t("series.answered"), values: rows.map((r) => r.answered) },
  ], { empty: t("empty") });
  lineChart(document.getElementById("chart-connect"), labels, [
    { name: t("series.connect"), values: rows.map((r) => r.connect_rate) },
  ], { max: 1, format: (v) => `${Math.round(v * 100)}%`, empty: t("empty") });
  const reasons = Object.entries(total.blocked_by_reason)
    .map(([code, n]) => ({ label: reason(code), value: n }))
    .sort((a, b) => b.value - a.value);
  barChart(document.getElementById("chart-reasons"), reasons, { empty: t("empty") });
}

function card(label, value, definition) {
  const attrs = definition ? { class: "card stat", title: definition, "data-definition": definition }
    : { class: "card stat" };
  return h("div", attrs, h("span", {}, t(label)), h("b", {}, fmt(value)));
}

// -- accounts and caller IDs ----------------------------------------------------------

export async function parties(kind, target, isAdmin, reload) {
  const data = await api("GET", `/api/risk?kind=${kind}`);
  const f = (row, key) => (row.figures ? row.figures[key] : null);
  const def = data.definitions || {};
  const columns = [
    { label: kind === "account" ? "col.account" : "col.caller_id", key: "key" },
    { label: "col.tenant", key: "tenant" },
    { label: "col.state", render: (r) => badge(r.state) },
    { label: "col.until", render: (r) => time(r.until) },
    { label: "col.attempts", title: def.attempts, render: (r) => fmt(f(r, "attempts")) },
    { label: "col.connect_rate", title: def.connect_rate, render: (r) => h("span", { class: "withbar" }, ratioBar(f(r, "connect_rate")), pct(f(r, "connect_rate"))) },
    { label: "col.short_ratio", title: def.short_call_ratio, render: (r) => pct(f(r, "short_call_ratio")) },
    { label: "col.complaints", title: def.complaints, render: (r) => fmt(f(r, "complaints")) },
    { label: "col.marks", title: def.marks, render: (r) => fmt(f(r, "marks")) },
    { label: "col.reason", key: "reason" },
  ];
  if (isAdmin && kind === "account") {
    columns.push({ label: "col.actions", render: (r) => partyAction(kind, r, reload) });
  }
  target.replaceChildren(table(columns, data.rows, (r) => ({ "data-party": r.key })));
}

function partyAction(kind, row, reload) {
  const banned = row.state === "suspended" || row.state === "disabled";
  return h("button", { class: banned ? "lift" : "suspend", onclick: async () => {
    const why = prompt(t("action.reason"));
    if (!why) return;
    try {
      if (banned) await api("POST", "/api/lift", { kind, key: row.key, reason: why });
      else await api("POST", "/api/suspend", { kind, key: row.key, reason: why, duration_s: 86400 });
      await reload();
    } catch (e) { flash(`${t("error")}: ${e.message}`, true); }
  } }, t(banned ? "action.lift" : "action.suspend"));
}

// -- appeals --------------------------------------------------------------------------

export async function appeals(canReview, reload) {
  const [pending, all] = await Promise.all([
    api("GET", "/api/appeals?state=pending"), api("GET", "/api/appeals")]);
  const party = { label: "col.party", render: (a) => `${a.party_kind} ${a.party_key}` };
  const columns = [
    { label: "col.created", render: (a) => time(a.created_at) }, party,
    { label: "col.text", key: "text" }, { label: "col.evidence", key: "evidence" },
  ];
  if (canReview) columns.push({ label: "col.decision", render: (a) => review(a, reload) });
  document.getElementById("appeals-pending").replaceChildren(
    table(columns, pending, (a) => ({ "data-appeal-id": a.id })));
  const decided = all.filter((a) => a.state !== "pending").reverse();
  document.getElementById("appeals-decided").replaceChildren(table([
    { label: "col.created", render: (a) => time(a.created_at) }, party,
    { label: "col.state", render: (a) => badge(a.state) },
    { label: "col.decision", key: "decision" }, { label: "col.reviewer", key: "reviewer" },
  ], decided, (a) => ({ "data-appeal-id": a.id, "data-state": a.state })));
}

function review(appeal, reload) {
  const input = h("input", { class: "decision-input", placeholder: t("appeals.decision") });
  const decide = (verb) => async () => {
    if (!input.value.trim()) { flash(t("appeals.need_reason"), true); input.focus(); return; }
    try {
      const done = await api("POST", `/api/appeals/${appeal.id}/${verb}`, { decision: input.value.trim() });
      flash(t("appeals.done", { id: done.id, state: t(`state.${done.state}`) }));
      await reload();
    } catch (e) { flash(`${t("error")}: ${e.message}`, true); }
  };
  return h("span", { class: "review" }, input,
    h("button", { class: "approve", onclick: decide("approve") }, t("appeals.approve")),
    h("button", { class: "reject", onclick: decide("reject") }, t("appeals.reject")));
}

// -- lists ----------------------------------------------------------------------------

export async function lists(state) {
  const rows = await api("GET", "/api/lists");
  document.getElementById("lists-table").replaceChildren(table([
    { label: "col.name", render: (l) => h("a", { href: "#lists", class: "listlink", onclick: (e) => {
      e.preventDefault(); state.list = l.name; state.offset = 0; entries(state);
    } }, l.name) },
    { label: "col.kind", key: "kind" }, { label: "col.entries", key: "entries" },
  ], rows));
  if (!state.list && rows.length) state.list = rows[0].name;
  if (state.list) await entries(state);
}

export async function entries(state) {
  const q = encodeURIComponent(document.getElementById("list-q").value.replace(/\D/g, ""));
  document.getElementById("list-name").textContent = state.list;
  const data = await api("GET", `/api/lists/${encodeURIComponent(state.list)}/entries?q=${q}&limit=50&offset=${state.offset || 0}`);
  const target = document.getElementById("entries-table");
  target.replaceChildren(table([
    { label: "col.number", key: "e164" }, { label: "col.expires", render: (e) => time(e.expires_at) },
    { label: "col.source", key: "source" }, { label: "col.reason", key: "reason" },
  ], data.entries));
  if (data.more) {
    target.append(h("button", { onclick: () => { state.offset = (state.offset || 0) + 50; entries(state); } }, t("lists.more")));
  }
}
