// The compliance page: a number's consent ledger (history, lists, revoke) and policy
// replay (a candidate policy against the logged calls, before it goes live).

import { api, token } from "./api.js";
import { h, table, time, flash, fmt } from "./pages.js";
import { reason, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

export async function compliance(role) {
  $("consent-revoke").hidden = role === "readonly";
  $("replay-form").hidden = role === "readonly";
}

export async function showConsent(role) {
  const number = $("consent-number").value.trim();
  if (!number) return;
  const body = await api("GET", `/api/consent/${encodeURIComponent(number)}`);
  $("consent-title").textContent = `${body.number}: ${t("consent.in_force", { n: body.in_force.length })}`;
  $("consent-history").replaceChildren(table([
    { key: "at", label: "col.time", render: (r) => time(r.at) },
    { key: "action", label: "consent.action" },
    { key: "tenant", label: "col.tenant" },
    { key: "campaign", label: "consent.campaign" },
    { key: "purpose", label: "consent.purpose" },
    { key: "source", label: "col.source" },
    { key: "channel", label: "consent.channel" },
    { key: "evidence", label: "col.evidence" },
    { key: "expires_at", label: "col.expires", render: (r) => time(r.expires_at) },
  ], body.history));
  $("consent-lists").replaceChildren(table([
    { key: "list", label: "col.name" },
    { key: "reason", label: "col.reason" },
    { key: "expires_at", label: "col.expires", render: (r) => time(r.expires_at) },
  ], body.lists));
  $("consent-revoke").hidden = role === "readonly";
}

export async function revokeConsent(role) {
  const number = $("consent-number").value.trim();
  const source = $("consent-source").value.trim();
  if (!number || !source) { flash(t("consent.need"), true); return; }
  const tenant = $("consent-tenant").value.trim();
  await api("POST", `/api/consent/${encodeURIComponent(number)}/revoke`,
    { source, tenant: tenant || null, evidence: $("consent-evidence").value.trim() });
  flash(t("consent.revoked"));
  await showConsent(role);
}

export async function runReplay() {
  const days = Number($("replay-days").value) || 7;
  $("replay-result").replaceChildren(h("p", { class: "muted" }, t("replay.running")));
  const response = await fetch(`/api/policy/replay?days=${days}`, {
    method: "POST", headers: { Authorization: `Bearer ${token()}`, "Content-Type": "text/plain" },
    body: $("replay-policy").value,
  });
  const body = await response.json();
  if (!response.ok) {
    const issues = (body.issues || []).map((i) => `${i.line}: ${i.key}: ${i.message}`);
    $("replay-result").replaceChildren(h("pre", { class: "error" },
      [body.message || `HTTP ${response.status}`, ...issues].join("\n")));
    return;
  }
  const by = body.by_change;
  $("replay-result").replaceChildren(
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
