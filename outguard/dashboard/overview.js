// Overview: today's or the last 14 days' calls at a glance. Every period of the window
// is drawn (empty ones as zero, the report fills them), every series side by side, the
// policy's time zone named, each figure's definition on hover (from outguard/figures.py
// via the report's ``definitions``), and the chosen range and period highlighted.

import { api, heavy } from "./api.js";
import { barChart, columnChart, lineChart } from "./charts.js";
import { reason, t } from "./i18n.js";
import { page } from "./registry.js";
import { fmt, h, pct, period } from "./ui.js";

const view = { range: "hour", selected: null };

page({
  id: "overview", label: "tab.overview", order: 10,
  render: async ({ section, rerender }) => {
    const by = view.range === "day" ? "day" : "hour";
    const days = view.range === "day" ? 14 : 1;
    const [report, stats] = await Promise.all([
      heavy("GET", `/api/report?by=${by}&days=${days}&fill=true`), api("GET", "/api/stats")]);
    const rows = report.rows;
    const def = report.definitions || {};
    const labels = rows.map((r) => period(r[by], by));
    if (view.selected != null && view.selected >= rows.length) view.selected = null;
    const total = report.total;
    const rangeButton = (range, label) => h("button", {
      "data-range": range, class: view.range === range ? "active" : "",
      "aria-pressed": String(view.range === range),
      onclick: () => { view.range = range; view.selected = null; rerender(); } }, t(label));
    const calls = h("div", { id: "chart-calls", class: "chart" });
    const connect = h("div", { id: "chart-connect", class: "chart" });
    const reasons = h("div", { id: "chart-reasons", class: "chart" });
    const chosen = view.selected == null ? null : rows[view.selected];
    section.replaceChildren(
      h("div", { class: "toolbar" }, rangeButton("hour", "range.today"), rangeButton("day", "range.days"),
        h("span", { class: "muted tz", id: "overview-tz" }, t("tz.named", { tz: report.timezone }))),
      h("div", { class: "cards", id: "overview-cards" },
        card("stat.attempts", fmt(total.attempts), def.attempts),
        card("stat.answered", fmt(total.answered), def.answered),
        card("stat.connect", pct(total.connect_rate), def.connect_rate),
        card("stat.complaints", fmt(total.complaints), def.complaints),
        card("stat.decisions", fmt(stats.decisions)),
        card("stat.p99", stats.latency_us.p99 == null ? "–" : `${stats.latency_us.p99} µs`)),
      h("div", { class: "card" }, h("h3", {}, t("chart.calls")), calls,
        h("p", { class: "muted selected-period", id: "overview-selected" },
          chosen ? [t("overview.selected", { period: labels[view.selected] }), " · ",
            `${t("series.attempts")} ${fmt(chosen.attempts)}, ${t("series.blocked")} ${fmt(chosen.blocked)}, `,
            `${t("series.answered")} ${fmt(chosen.answered)}, ${t("stat.connect")} ${pct(chosen.connect_rate)}`] : "")),
      h("div", { class: "row" },
        h("div", { class: "card half" }, h("h3", { title: def.connect_rate }, t("chart.connect")), connect),
        h("div", { class: "card half" }, h("h3", { title: def.blocked }, t("chart.reasons")), reasons)));
    const highlight = view.selected == null ? null : [view.selected, view.selected];
    columnChart(calls, labels, [
      { key: "attempts", name: t("series.attempts"), values: rows.map((r) => r.attempts), cls: 0, definition: def.attempts },
      { key: "allowed", name: t("series.allowed"), values: rows.map((r) => r.allowed), cls: 1, definition: def.allowed },
      { key: "blocked", name: t("series.blocked"), values: rows.map((r) => r.blocked), cls: 4, definition: def.blocked },
      { key: "answered", name: t("series.answered"), values: rows.map((r) => r.answered), cls: 2, definition: def.answered },
    ], { height: 220, highlight, empty: t("empty"),
         onSelect: (i) => { view.selected = view.selected === i ? null : i; rerender(); } });
    lineChart(connect, labels, [
      { key: "connect_rate", name: t("series.connect"), values: rows.map((r) => r.connect_rate), definition: def.connect_rate },
    ], { max: 1, format: (v) => `${Math.round(v * 100)}%`, empty: t("empty"), highlight });
    const blocked = (chosen || total).blocked_by_reason;
    barChart(reasons, Object.entries(blocked).map(([code, n]) => ({ label: reason(code), value: n }))
      .sort((a, b) => b.value - a.value), { empty: t("empty") });
  },
});

function card(label, value, definition) {
  const attrs = definition ? { class: "card stat", title: definition, "data-definition": definition }
    : { class: "card stat" };
  return h("div", attrs, h("span", {}, t(label)), h("b", {}, value));
}
