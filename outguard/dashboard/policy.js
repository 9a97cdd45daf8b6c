// The policy: what is in force (rules in evaluation order with their hit counts since
// the store began counting, lists, windows, the jurisdiction packs' dated sources),
// checking policy text, reloading the file.

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
      packs(policy.packs),
      h("div", { class: "card" }, h("h3", {}, t("policy.validate")), check, checked));
    lastCheck = null;
  },
});

// The policy's jurisdiction packs: each figure with its basis (law or practice), the text
// it comes from and the date the sources were checked (as `outguard policy show` prints).
function packs(list) {
  return h("div", { class: "card", id: "policy-packs" }, h("h3", {}, t("pack.title")),
    list.length ? list.map((p) => h("div", { class: "pack", "data-pack": p.name },
      h("h4", {}, `${p.name}: ${p.title} `, h("span", { class: "muted pack-checked" }, t("pack.checked", { date: p.checked }))),
      table([
        { label: "pack.basis", render: (x) => h("span", { class: `badge ${x.basis}` }, t(`pack.${x.basis}`)) },
        { label: "pack.figure", key: "figure" },
        { label: "pack.cite", render: (x) => (x.url ? h("a", { href: x.url, target: "_blank", rel: "noopener" }, x.cite) : x.cite) },
      ], p.sources, (x) => ({ "data-basis": x.basis }))))
      : h("p", { class: "muted" }, t("pack.none")));
}
