// Complaint deadlines: open complaints from regulators' channels (12321, 12300, FCC,
// Ofcom), nearest deadline first, overdue and due-soon ones marked; reviewers close one by
// saying what was done (the audit trail keeps who and when). Below, the channels' figures
// and whether each is law or practice. A deadline counted Monday-Friday on a year its
// holiday calendar does not know is marked "calendar unknown", and the calendars' warnings
// (a known year about to end) stand above the table.

import { api } from "./api.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { flash, fmt, h, table, time } from "./ui.js";

page({
  id: "deadlines", label: "tab.deadlines", order: 76,
  render: async ({ section, rerender, can }) => {
    const [due, channels] = await Promise.all([
      api("GET", "/api/complaints/due"), api("GET", "/api/complaints/channels")]);
    const columns = [
      { key: "deadline", label: "deadlines.state",
        render: (r) => h("span", {},
          h("span", { class: `badge ${r.deadline}` }, t(`deadlines.${r.deadline}`)),
          r.calendar_unknown ? h("span", { class: "badge overdue calendar-unknown",
                                           title: t("deadlines.calendar_unknown_why") },
                                 t("deadlines.calendar_unknown")) : "") },
      { key: "due_at", label: "deadlines.due", render: (r) => time(r.due_at) },
      { key: "source", label: "deadlines.channel" },
      { key: "caller_id", label: "col.caller_id" },
      { key: "reporter", label: "deadlines.callee" },
      { key: "received_at", label: "deadlines.received", render: (r) => time(r.received_at) },
      { key: "tenant", label: "col.tenant" },
    ];
    if (can("reviewer")) columns.push({ key: "id", label: "deadlines.handle", render: (r) => closer(r, rerender) });
    section.replaceChildren(
      h("div", { class: "card" }, h("h3", {}, t("deadlines.title")),
        h("p", { id: "deadline-counts", class: "muted" }, t("deadlines.counts", due.counts)),
        ...(channels.calendar_warnings || []).map((w) =>
          h("p", { class: "calendar-warning warn" }, w)),
        h("div", { id: "deadline-table" }, table(columns, due.complaints,
          (r) => ({ "data-complaint": r.id, "data-deadline": r.deadline })))),
      h("div", { class: "card" }, h("h3", {}, t("deadlines.channels")),
        h("div", { id: "deadline-channels" }, table([
          { key: "channel", label: "deadlines.channel" },
          { key: "act_days", label: "deadlines.act", render: (c) => `${c.act_days} ${t(c.unit === "days" ? "deadlines.days" : "deadlines.working_days")}` },
          { key: "forward_days", label: "deadlines.forward", render: (c) => fmt(c.forward_days) },
          { key: "basis", label: "deadlines.basis", render: (c) => t(`deadlines.${c.basis}`) },
          { key: "cite", label: "deadlines.source" },
        ], channels.channels))));
  },
  onEvent: (type, ev, ctx) => {
    if (type === "enforcement" && String(ev.event || "").startsWith("complaint.")) ctx.rerender();
  },
});

function closer(row, reload) {
  const input = h("input", { class: "resolution", placeholder: t("deadlines.resolution") });
  const button = h("button", { class: "close-complaint", onclick: async () => {
    const resolution = input.value.trim();
    if (!resolution) { flash(t("deadlines.need"), true); return; }
    try {
      await api("POST", `/api/complaints/${row.id}/close`, { resolution });
      flash(t("deadlines.closed", { id: row.id }));
      await reload();
    } catch (e) { flash(e.message, true); }
  } }, t("deadlines.close"));
  return h("span", { class: "toolbar" }, input, button);
}
