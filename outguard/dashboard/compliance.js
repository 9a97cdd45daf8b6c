// Compliance: a number's consent ledger (history, the lists it is on; reviewers record a
// revocation) and policy replay (a candidate policy against the logged calls, before it
// goes live).

import { api, token } from "./api.js";
import { reason, t } from "./i18n.js";
import { page } from "./registry.js";
import { flash, fmt, h, table, time } from "./ui.js";

page({
  id: "compliance", label: "tab.compliance", order: 75,
  render: async ({ section, can }) => {
    const number = h("input", { id: "consent-number", inputmode: "tel", placeholder: t("consent.number") });
    const ledger = h("div", { id: "consent-ledger" });
    const show = async () => {
      const value = number.value.trim();
      if (value) ledger.replaceChildren(await consent(value, can("reviewer"), show));
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
          h("button", { type: "submit" }, t("replay.run")))), replayBox) : ""));
  },
});

async function consent(number, reviewer, reload) {
  const body = await api("GET", `/api/consent/${encodeURIComponent(number)}`);
  const parts = [
    h("h4", { id: "consent-title" }, `${body.number}: ${t("consent.in_force", { n: body.in_force.length })}`),
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
    ], body.history),
    table([
      { key: "list", label: "col.name" },
      { key: "reason", label: "col.reason" },
      { key: "expires_at", label: "col.expires", render: (r) => time(r.expires_at) },
    ], body.lists),
  ];
  if (reviewer) {
    const tenant = h("input", { id: "consent-tenant", placeholder: t("col.tenant") });
    const source = h("input", { id: "consent-source", placeholder: t("consent.source") });
    const evidence = h("input", { id: "consent-evidence", placeholder: t("col.evidence") });
    parts.push(h("form", { id: "consent-revoke", class: "toolbar", onsubmit: async (e) => {
      e.preventDefault();
      if (!source.value.trim()) { flash(t("consent.need"), true); return; }
      try {
        await api("POST", `/api/consent/${encodeURIComponent(number)}/revoke`, {
          source: source.value.trim(), tenant: tenant.value.trim() || null,
          evidence: evidence.value.trim() });
        flash(t("consent.revoked"));
        await reload();
      } catch (err) { flash(err.message, true); }
    } }, tenant, source, evidence, h("button", { type: "submit" }, t("consent.revoke"))));
  }
  return h("div", {}, ...parts);
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
