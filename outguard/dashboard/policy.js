// The policy: what is in force (rules in evaluation order with their hit counts since
// the store began counting, lists, windows), checking policy text, reloading the file.

import { api, heavy } from "./api.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { can, flash, fmt, form, h, table } from "./ui.js";

let lastCheck = null;

page({
  id: "policy", label: "tab.policy", order: 70,
  render: async ({ section, rerender, me }) => {
    const [policy, stats] = await Promise.all([api("GET", "/api/policy"), api("GET", "/api/stats")]);
    const hits = stats.rule_hits || {};
    const count = (rule, outcome) => fmt((hits[rule.id] || {})[outcome] || 0);
    const rules = table([
      { label: "col.rule", key: "id" }, { label: "col.kind", key: "kind" },
      { label: "col.stage", key: "stage" }, { label: "col.mode", key: "mode" },
      { label: "hits.block", cls: "num", render: (r) => count(r, "block") },
      { label: "hits.shadow", cls: "num", render: (r) => count(r, "shadow") },
      { label: "hits.exempt", cls: "num", render: (r) => count(r, "exempt") },
      { label: "col.where", key: "where" },
    ], policy.rules, (r) => ({ "data-rule": r.id }));
    const check = form("policy-check", [
      { name: "text", label: "policy.text", type: "textarea", rows: 8, required: true },
    ], "policy.check", async (v) => {
      lastCheck = await heavy("POST", "/api/policy/validate", v.text);
      await rerender();
    });
    const checked = lastCheck ? h("div", { id: "policy-check-result" }, lastCheck.valid
      ? h("p", { class: "ok" }, t("policy.valid"))
      : [h("p", { class: "error" }, t("policy.invalid", { n: lastCheck.issues.length })),
        table([{ label: "col.line", render: (i) => `${i.file}:${i.line}` }, { label: "col.rule", key: "key" },
               { label: "col.reason", key: "message" }], lastCheck.issues)]) : "";
    const reload = can(me, "admin") ? h("button", { type: "button", id: "policy-reload", class: "primary", onclick: async () => {
      try {
        const r = await heavy("POST", "/api/policy/reload");
        flash(t("policy.reloaded", { rules: r.rules }));
        await rerender();
      } catch (e) { flash(`${t("error")}: ${e.message}`, true); }
    } }, t("policy.reload")) : "";
    section.replaceChildren(
      h("div", { class: "card" }, h("h3", {}, t("policy.title")),
        h("p", {}, `${t("policy.source")}: `, h("code", {}, policy.source), ` · ${t("policy.tz")}: ${policy.timezone}`,
          ` · ${t("policy.region")}: ${policy.default_region}`, " ", reload),
        h("h4", {}, t("policy.rules")), rules,
        h("h4", {}, t("policy.lists")), table([
          { label: "col.name", key: "name" }, { label: "col.kind", render: (l) => t(`listkind.${l.kind}`) },
          { label: "col.scope", render: (l) => t(`scope.${l.scope}`) },
        ], policy.lists)),
      h("div", { class: "card" }, h("h3", {}, t("policy.validate")), check, checked));
    lastCheck = null;
  },
});
