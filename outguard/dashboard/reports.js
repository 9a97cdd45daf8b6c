// Reports: calls, blocks, answers, 接通率, short calls and complaints by day, hour,
// tenant or account over a window, in the policy's time zone (named), with a chart when
// grouped by time (every period drawn, empty ones as zero) and a CSV download.

import { heavy } from "./api.js";
import { columnChart } from "./charts.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { download, flash, fmt, form, h, pct, period, table, time } from "./ui.js";

const GROUPS = { day: "by.day", hour: "by.hour", tenant: "by.tenant", account: "by.account",
                 "day,tenant": "by.day_tenant", "day,account": "by.day_account" };
const view = { by: "day", days: "7", tenant: "", account: "" };

function query(extra) {
  const p = new URLSearchParams({ by: view.by, days: view.days, ...extra });
  if (view.tenant) p.set("tenant", view.tenant);
  if (view.account) p.set("account", view.account);
  return p;
}

page({
  id: "reports", label: "tab.reports", order: 65,
  render: async ({ section, rerender }) => {
    const timeOnly = view.by === "day" || view.by === "hour";
    const report = await heavy("GET", `/api/report?${query(timeOnly ? { fill: "true" } : {})}`);
    const def = report.definitions || {};
    const by = report.by;
    const controls = form("report-form", [
      { name: "by", label: "reports.by", type: "select", value: view.by, options: Object.entries(GROUPS).map(([v, l]) => [v, t(l)]) },
      { name: "days", label: "reports.days", type: "select", value: view.days, options: ["1", "7", "30", "90"].map((d) => [d, t(`days.${d}`)]) },
      { name: "tenant", label: "reports.tenant", value: view.tenant },
      { name: "account", label: "reports.account", value: view.account },
    ], "reports.run", async (v) => { Object.assign(view, v); await rerender(); }, { cls: "inline-form" });
    const exportButton = h("button", { type: "button", class: "export", id: "report-export", onclick: () =>
      download(`/api/report?${query({ format: "csv" })}`, "outguard-report.csv").catch((e) => flash(e.message, true)) }, t("action.export"));
    const keyColumns = by.map((g) => ({ label: `col.${g}`, render: (r) => (g === "day" || g === "hour" ? period(r[g], g) : r[g]) }));
    const figure = (key, label, render) => ({ label, title: def[key], cls: "num", render: render || ((r) => fmt(r[key])) });
    const columns = [...keyColumns,
      figure("attempts", "col.attempts"), figure("allowed", "col.allowed"), figure("blocked", "col.blocked"),
      figure("ended", "col.ended"), figure("answered", "col.answered"),
      figure("connect_rate", "col.connect_rate", (r) => pct(r.connect_rate)),
      figure("avg_duration", "col.avg_duration", (r) => fmt(r.avg_duration)),
      figure("short_call_ratio", "col.short_ratio", (r) => pct(r.short_call_ratio)),
      figure("listed_blocks", "col.listed"), figure("complaints", "col.complaints")];
    const chart = h("div", { id: "report-chart", class: "chart" });
    section.replaceChildren(
      h("div", { class: "card" }, controls, h("p", { class: "muted", id: "report-range" },
        t("reports.range", { since: time(report.since), until: time(report.until) }), " · ",
        t("tz.named", { tz: report.timezone }), " ", exportButton)),
      timeOnly ? h("div", { class: "card" }, chart) : "",
      h("div", { class: "card" }, h("div", { id: "report-table" }, table(columns, [...report.rows, { ...report.total, [by[0]]: t("col.total"), total: true }],
        (r) => (r.total ? { class: "total" } : { "data-key": by.map((g) => r[g]).join("|") })))));
    if (timeOnly) {
      const rows = report.rows;
      columnChart(chart, rows.map((r) => period(r[view.by], view.by)), [
        { name: t("series.attempts"), values: rows.map((r) => r.attempts), cls: 0, definition: def.attempts },
        { name: t("series.blocked"), values: rows.map((r) => r.blocked), cls: 4, definition: def.blocked },
        { name: t("series.answered"), values: rows.map((r) => r.answered), cls: 2, definition: def.answered },
      ], { height: 200, empty: t("empty") });
    }
  },
});
