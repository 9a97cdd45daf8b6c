// Suspensions (封号): suspend a party for a duration, the policy's next grade or for good,
// lift (解封), and the history; complaints and callee marks (投诉, 标记): record one, import
// a 12321-style CSV with the rejected lines shown, and the recent ones.

import { api, heavy, upload } from "./api.js";
import { DURATIONS, liftParty, suspendParty, suspensionTable } from "./actions.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { can, flash, fmt, form, h, reasoned, rejectTable, table, time } from "./ui.js";

const KINDS = ["account", "caller_id", "tenant"];
const susp = { all: false };

page({
  id: "suspensions", label: "tab.suspensions", order: 40,
  render: async ({ section, rerender, me }) => {
    const rows = await api("GET", `/api/suspensions?active=${susp.all ? "false" : "true"}`);
    rows.reverse();  // newest first
    const admin = can(me, "admin");
    const create = admin ? h("div", { class: "card" }, h("h3", {}, t("susp.title")), form("suspend-form", [
      { name: "kind", label: "susp.kind", type: "select", options: KINDS.map((k) => [k, t(`party.${k}`)]) },
      { name: "key", label: "susp.key", required: true },
      { name: "duration", label: "susp.duration", type: "select", value: "86400", options: DURATIONS.map((d) => [d, t(`dur.${d}`)]) },
      { name: "reason", label: "susp.reason", required: true },
    ], "action.suspend_for", async (v) => {
      const message = await suspendParty(v.kind, v.key, v.duration, v.reason);
      flash(message);
      await rerender();
      return message;
    }, { buttonClass: "suspend" })) : "";
    const lift = admin ? (s) => (s.lifted_at || String(s.party_key).includes("*") ? "" :
      reasoned("action.lift", "lift", async (why) => { flash(await liftParty(s.party_kind, s.party_key, why)); await rerender(); })) : null;
    const toggle = (all, label) => h("button", { class: all === susp.all ? "active" : "", "data-history": String(all),
      onclick: () => { susp.all = all; rerender(); } }, t(label));
    section.replaceChildren(create, h("div", { class: "card" },
      h("div", { class: "toolbar" }, toggle(false, "susp.active"), toggle(true, "susp.all")),
      h("div", { id: "suspensions-table" }, suspensionTable(rows, lift))));
  },
  onEvent: (type, ev, ctx) => { if (type === "enforcement") ctx.rerender(); },
});

const CATEGORIES = ["harassment", "fraud", "advertising", "other"];
const compl = { days: 30, lastImport: null };

page({
  id: "complaints", label: "tab.complaints", order: 45,
  render: async ({ section, rerender, me }) => {
    const rows = (await heavy("GET", `/api/complaints?days=${compl.days}`)).reverse();
    const cards = [];
    if (can(me, "reviewer")) {
      cards.push(h("div", { class: "card" }, h("h3", {}, t("compl.add")), form("complaint-form", [
        { name: "kind", label: "compl.kind", type: "select", options: [["complaint", t("kind.complaint")], ["mark", t("kind.mark")]] },
        { name: "callee", label: "compl.callee", required: true },
        { name: "caller_id", label: "compl.caller", required: true },
        { name: "category", label: "col.category", type: "select", options: CATEGORIES.map((c) => [c, t(`cat.${c}`)]) },
        { name: "source", label: "compl.source", placeholder: "12321" },
        { name: "note", label: "compl.note" },
      ], "compl.add", async (v) => {
        const body = { ...v };
        if (!body.source) delete body.source;
        await api("POST", "/api/complaints", body);
        flash(t("compl.added"));
        await rerender();
      })));
    }
    if (can(me, "admin")) {
      const result = h("div", { id: "complaints-import-result" }, compl.lastImport ? importReport(compl.lastImport) : "");
      cards.push(h("div", { class: "card" }, h("h3", {}, t("compl.import")), form("complaint-import", [
        { name: "kind", label: "compl.kind", type: "select", options: [["complaint", t("kind.complaint")], ["mark", t("kind.mark")]] },
        { name: "file", label: "lists.file", type: "file", accept: ".csv,text/csv", required: true },
      ], "lists.import", async (v) => {
        compl.lastImport = { ...(await upload(`/api/complaints/import?kind=${v.kind}&filename=${encodeURIComponent(v.file.name)}`, v.file, () => {})), path: v.file.name };
        await rerender();
      }), result));
    }
    cards.push(h("div", { class: "card" }, h("h3", {}, t("compl.title", { days: compl.days })), table([
      { label: "col.at", render: (c) => time(c.at) },
      { label: "compl.kind", render: (c) => t(`kind.${c.kind}`) },
      { label: "col.caller_id", key: "caller_id" }, { label: "col.callee", key: "reporter" },
      { label: "col.category", render: (c) => t(`cat.${c.category}`) },
      { label: "compl.source", key: "source" }, { label: "col.tenant", key: "tenant" },
      { label: "col.note", key: "note" },
    ], rows, (c) => ({ "data-complaint": c.id }))));
    section.replaceChildren(...cards);
  },
});

function importReport(r) {
  return h("div", { class: "import-report" },
    h("p", { class: r.rejected ? "warn" : "ok" }, t("compl.imported", { added: fmt(r.added), rejected: fmt(r.rejected), lines: fmt(r.lines) })),
    r.rejects && r.rejects.length ? rejectTable(r.rejects.map((x) => (Array.isArray(x) ? { line: x[0], reason: x[1] } : x)), r.path) : "");
}
