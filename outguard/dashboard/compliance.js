// Compliance: a number's consent ledger (history, the consents in force and those a
// reassigned number's disconnect date voids, the lists it is on); reviewers record a
// revocation, admins a consent, a CSV of grants and revocations, and reassigned-number
// results (FCC RND); and policy replay (a candidate policy against the logged calls,
// before it goes live).

import { api, token, upload } from "./api.js";
import { reason, t } from "./i18n.js";
import { page } from "./registry.js";
import { flash, fmt, form, h, rejectTable, table, time } from "./ui.js";

const PURPOSES = ["marketing", "service", "collection", "notification"];
const view = { number: "", imported: null };

page({
  id: "compliance", label: "tab.compliance", order: 75,
  render: async ({ section, can, rerender }) => {
    const number = h("input", { id: "consent-number", inputmode: "tel", placeholder: t("consent.number"), value: view.number });
    const ledger = h("div", { id: "consent-ledger" });
    const show = async () => {
      view.number = number.value.trim();
      if (view.number) ledger.replaceChildren(await consent(view.number, can, show));
    };
    const replayBox = h("div", { id: "replay-result" });
    const policy = h("textarea", { id: "replay-policy", rows: 10, placeholder: t("replay.placeholder") });
    const days = h("input", { id: "replay-days", type: "number", min: 1, max: 31, value: 7 });
    section.replaceChildren(h("div", { class: "row" },
      h("div", { class: "card half" }, h("h3", {}, t("consent.title")),
        h("form", { id: "consent-form", class: "toolbar", onsubmit: (e) => {
          e.preventDefault(); show().catch((err) => flash(err.message, true));
        } }, number, h("button", { type: "submit" }, t("lists.go"))), ledger),
      can("reviewer") ? h("div", { class: "card half" }, h("h3", {}, t("replay.title")),
        h("form", { id: "replay-form", onsubmit: (e) => {
          e.preventDefault(); runReplay(policy.value, Number(days.value) || 7, replayBox)
            .catch((err) => flash(err.message, true));
        } }, policy, h("div", { class: "toolbar" },
          h("label", {}, h("span", {}, t("replay.days")), " ", days),
          h("button", { type: "submit" }, t("replay.run")))), replayBox) : ""),
      can("admin") ? imports(rerender) : "");
    if (view.number) await show();
  },
});

/** Scope fields of a grant or revocation: campaign and purpose narrow it. */
function scopeFields() {
  return [
    { name: "campaign", label: "consent.campaign" },
    { name: "purpose", label: "consent.purpose", type: "select",
      options: [["", t("consent.any")], ...PURPOSES.map((p) => [p, p])] },
  ];
}

function scoped(v) {
  const body = { source: v.source, evidence: v.evidence || "" };
  if (v.tenant) body.tenant = v.tenant;
  if (v.campaign) body.campaign = v.campaign;
  if (v.purpose) body.purpose = v.purpose;
  return body;
}

async function consent(number, can, reload) {
  const body = await api("GET", `/api/consent/${encodeURIComponent(number)}`);
  const parts = [
    h("h4", { id: "consent-title" }, `${body.number}: ${t("consent.in_force", { n: body.in_force.length })}`),
    ...body.void.map((g) => h("p", { class: "warn consent-void", "data-consent": g.id }, t("consent.void", {
      id: g.id, tenant: g.tenant, given: time(g.given_at), when: time(g.disconnected_at) }))),
    table([
      { key: "at", label: "col.time", render: (r) => time(r.at) },
      { key: "action", label: "consent.action" },
      { key: "tenant", label: "col.tenant" },
      { key: "campaign", label: "consent.campaign" },
      { key: "purpose", label: "consent.purpose" },
      { key: "source", label: "col.source" },
      { key: "channel", label: "consent.channel" },
      { key: "evidence", label: "col.evidence" },
      { key: "expires_at", label: "col.expires", render: (r) => time(r.expires_at) },
    ], body.history, (r) => ({ "data-event": r.id, "data-action": r.action })),
    table([
      { key: "list", label: "col.name" },
      { key: "reason", label: "col.reason" },
      { key: "disconnected_at", label: "col.disconnected", render: (r) => time(r.disconnected_at) },
      { key: "expires_at", label: "col.expires", render: (r) => time(r.expires_at) },
    ], body.lists, (r) => ({ "data-list": r.list })),
  ];
  const path = (action) => `/api/consent/${encodeURIComponent(number)}/${action}`;
  if (can("reviewer")) {
    parts.push(h("h4", {}, t("consent.revoke")), form("consent-revoke", [
      { name: "tenant", label: "col.tenant" }, ...scopeFields(),
      { name: "source", label: "consent.source", required: true },
      { name: "evidence", label: "col.evidence" },
    ], "consent.revoke", async (v) => {
      await api("POST", path("revoke"), scoped(v));
      flash(t("consent.revoked"));
      await reload();
    }, { buttonClass: "reject" }));
  }
  if (can("admin")) {
    parts.push(h("h4", {}, t("consent.grant")), form("consent-grant", [
      { name: "tenant", label: "col.tenant", required: true }, ...scopeFields(),
      { name: "source", label: "consent.given_by", required: true },
      { name: "evidence", label: "col.evidence" },
      { name: "expires", label: "consent.expires", type: "date" },
      { name: "list", label: "consent.list", value: "consent" },
    ], "consent.grant", async (v) => {
      const grant = { ...scoped(v), list: v.list || "consent" };
      if (v.expires) grant.expires_at = new Date(`${v.expires}T23:59:59`).toISOString();
      await api("POST", path("grant"), grant);
      flash(t("consent.granted"));
      await reload();
    }));
  }
  return h("div", {}, ...parts);
}

/** Admins: a CSV of grants and revocations (all or nothing, bad lines named), and the
 * reassigned-number results that void older consent. */
function imports(rerender) {
  const done = async (run, file) => {
    try {
      view.imported = { ok: true, file: file.name, text: await run() };
    } catch (e) {
      view.imported = { ok: false, file: file.name, text: e.message, rejects: (e.body && e.body.rejects) || [] };
    }
    await rerender();
  };
  const ledger = form("consent-import", [
    { name: "file", label: "lists.file", type: "file", required: true, accept: ".csv,text/csv" },
  ], "lists.import", (v) => done(async () => {
    const r = await upload("/api/consent/import", v.file, () => {});
    return t("consent.imported", { n: fmt(r.recorded), file: v.file.name });
  }, v.file));
  const reassigned = form("consent-reassigned", [
    { name: "list", label: "consent.reassigned_list", value: "rnd", required: true },
    { name: "file", label: "lists.file", type: "file", required: true, accept: ".csv,text/csv" },
  ], "lists.import", (v) => done(async () => {
    const r = await upload(`/api/consent/reassigned/${encodeURIComponent(v.list)}`, v.file, () => {});
    return t("consent.reassigned_done", { n: fmt(r.numbers), list: r.list });
  }, v.file));
  const last = view.imported;
  const result = h("div", { id: "consent-import-result" }, last ? [
    h("p", { class: last.ok ? "ok" : "error", id: "consent-import-summary" }, `${last.file}: ${last.text.split("\n")[0]}`),
    last.rejects && last.rejects.length ? rejectTable(last.rejects, last.file) : ""] : "");
  return h("div", {}, h("div", { class: "row" },
    h("div", { class: "card half" }, h("h3", {}, t("consent.import")), ledger),
    h("div", { class: "card half" }, h("h3", {}, t("consent.reassigned")), reassigned)), result);
}

async function runReplay(text, days, box) {
  box.replaceChildren(h("p", { class: "muted" }, t("replay.running")));
  const response = await fetch(`/api/policy/replay?days=${days}`, {
    method: "POST", headers: { Authorization: `Bearer ${token()}`, "Content-Type": "text/plain" },
    body: text,
  });
  const body = await response.json();
  if (!response.ok) {
    const issues = (body.issues || []).map((i) => `${i.line}: ${i.key}: ${i.message}`);
    box.replaceChildren(h("pre", { class: "error" },
      [body.message || `HTTP ${response.status}`, ...issues].join("\n")));
    return;
  }
  const by = body.by_change;
  box.replaceChildren(
    h("p", {}, t("replay.summary", { calls: body.calls, changed: body.changed,
      blocked: by.newly_blocked, allowed: by.newly_allowed, other: by.other_rule,
      s: body.seconds })),
    table([
      { key: "change", label: "replay.change", render: (r) => t(`replay.${r.change}`) },
      { key: "count", label: "replay.count", cls: "num" },
      { key: "rule", label: "replay.rule", render: (r) => (r.rule ? `${r.rule} · ${reason(r.reason)}` : "–") },
      { key: "was_rule", label: "replay.was", render: (r) => (r.was_rule ? `${r.was_rule} · ${reason(r.was_reason)}` : "–") },
      { key: "examples", label: "replay.examples",
        render: (r) => r.examples.map((e) => `${e.destination} ${time(e.at)}`).join("; ") || fmt(null) },
    ], body.changes));
}
