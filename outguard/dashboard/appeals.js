// Appeals (申诉): the review queue with approve (解封) / reject for reviewers, and the
// decided ones.

import { api, heavy } from "./api.js";
import { partyName } from "./actions.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { badge, flash, h, table, time } from "./ui.js";

page({
  id: "appeals", label: "tab.appeals", order: 50,
  render: async ({ section, rerender, can }) => {
    const all = await heavy("GET", "/api/appeals");
    const pending = all.filter((a) => a.state === "pending");
    const party = { label: "col.party", render: (a) => partyName(a.party_kind, a.party_key) };
    const columns = [
      { label: "col.created", render: (a) => time(a.created_at) }, party,
      { label: "col.text", key: "text" }, { label: "col.evidence", key: "evidence" },
    ];
    if (can("reviewer")) columns.push({ label: "col.decision", render: (a) => review(a, rerender) });
    const decided = all.filter((a) => a.state !== "pending").reverse();
    section.replaceChildren(
      h("div", { class: "card" }, h("h3", {}, t("appeals.pending")), h("div", { id: "appeals-pending" },
        table(columns, pending, (a) => ({ "data-appeal-id": a.id })))),
      h("div", { class: "card" }, h("h3", {}, t("appeals.decided")), h("div", { id: "appeals-decided" }, table([
        { label: "col.created", render: (a) => time(a.created_at) }, party,
        { label: "col.state", render: (a) => badge(a.state) },
        { label: "col.decision", key: "decision" }, { label: "col.reviewer", key: "reviewer" },
      ], decided, (a) => ({ "data-appeal-id": a.id, "data-state": a.state })))));
  },
  onEvent: (type, ev, ctx) => { if (type === "enforcement") ctx.rerender(); },
});

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
