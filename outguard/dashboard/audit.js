// The audit log: every change, newest first, a page at a time (keyset: before=<id>),
// filtered by who and by what.

import { heavy } from "./api.js";
import { partyName } from "./actions.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { h, table, time } from "./ui.js";

const ACTIONS = ["", "list", "suspension", "appeal", "complaint", "tenant", "account", "caller_id", "user", "token", "policy"];
const view = { actor: "", action: "", party: "", pages: [], limit: 50 };

page({
  id: "audit", label: "tab.audit", order: 90,
  render: async ({ section, rerender }) => {
    const p = new URLSearchParams({ order: "desc", limit: view.limit + 1 });
    const before = view.pages[view.pages.length - 1];
    if (before) p.set("before", before);
    for (const key of ["actor", "action", "party"]) if (view[key]) p.set(key, view[key]);
    const rows = await heavy("GET", `/api/audit?${p}`);
    const more = rows.length > view.limit;
    rows.length = Math.min(rows.length, view.limit);
    const filters = h("form", { class: "toolbar", id: "audit-filter" },
      h("input", { name: "actor", value: view.actor, placeholder: t("audit.actor") }),
      h("select", { name: "action" }, ACTIONS.map((a) => h("option", { value: a, selected: a === view.action }, a || `${t("audit.action")}: ${t("filter.all")}`))),
      h("input", { name: "party", value: view.party, placeholder: t("audit.party") }),
      h("button", { type: "submit" }, t("search")));
    filters.addEventListener("submit", (e) => {
      e.preventDefault();
      for (const key of ["actor", "action", "party"]) view[key] = filters.elements[key].value.trim();
      view.pages = [];
      rerender();
    });
    section.replaceChildren(h("div", { class: "card" }, h("h3", {}, t("audit.title")), filters,
      h("div", { id: "audit-table" }, table([
        { label: "col.at", render: (r) => time(r.at) }, { label: "col.actor", key: "actor" },
        { label: "col.action", key: "action" },
        { label: "col.party", render: (r) => (r.party_kind ? partyName(r.party_kind, r.party_key) : r.party_key || "–") },
      ], rows, (r) => ({ "data-audit": r.id, "data-action": r.action }))),
      h("div", { class: "pager" },
        h("button", { class: "prev", disabled: !view.pages.length, onclick: () => { view.pages.pop(); rerender(); } }, "‹ ", t("audit.newer")),
        h("button", { class: "next", disabled: !more, onclick: () => { view.pages.push(rows[rows.length - 1].id); rerender(); } }, t("audit.older"), " ›"))));
  },
});
