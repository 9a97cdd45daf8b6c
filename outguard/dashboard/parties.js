// Accounts, caller IDs and tenants: searched, filtered, sorted and paged by the server
// (GET /api/risk), with their risk figures (definitions on hover), real-name verification
// and its expiry for caller IDs, and for admins: create, set the admin state, suspend,
// lift, history. Another module adds its part to one of these pages through the page's
// ``extra``: top() -> cards drawn first, after() -> fills them once the page is drawn.

import { api, heavy } from "./api.js";
import { ratioBar } from "./charts.js";
import { t } from "./i18n.js";
import { history, partyActions } from "./actions.js";
import { healthPart } from "./health.js";
import { page } from "./registry.js";
import { badge, can, flash, fmt, form, h, pager, pct, table, time } from "./ui.js";

const VIEWS = {};
const STATES = ["", "active", "suspended", "disabled", "unknown"];

function viewOf(kind) {
  return VIEWS[kind] || (VIEWS[kind] = { q: "", state: "", tenant: "", sort: "-attempts", offset: 0, limit: 50 });
}

async function partyPage(kind, ctx, extra) {
  const view = viewOf(kind);
  const { section, rerender } = ctx;
  const params = new URLSearchParams({ kind, sort: view.sort, limit: view.limit, offset: view.offset });
  if (view.q) params.set("q", view.q);
  if (view.state) params.set("state", view.state);
  if (view.tenant) params.set("tenant", view.tenant);
  const [data, tenants] = await Promise.all([heavy("GET", `/api/risk?${params}`),
    kind === "tenant" ? Promise.resolve([]) : api("GET", "/api/tenants")]);
  const def = data.definitions || {};
  const f = (row, key) => (row.figures ? row.figures[key] : null);
  const columns = [
    { label: { account: "col.account", caller_id: "col.caller_id", tenant: "col.tenant" }[kind], key: "key", sort: "key" },
    ...(kind === "tenant" ? [{ label: "tenants.name", key: "name" }] : [{ label: "col.tenant", key: "tenant", sort: "tenant" }]),
    ...(kind === "account" ? [{ label: "accounts.name", key: "name" }] : []),
    ...(kind === "caller_id" ? [
      { label: "col.verification", render: (r) => h("span", { class: `badge v-${r.verification}` }, t(`verification.${r.verification || "missing"}`)) },
      { label: "col.verified_until", sort: "verified_until", render: expiry }] : []),
    { label: "col.state", sort: "state", render: (r) => badge(r.state) },
    { label: "col.until", sort: "until", render: (r) => time(r.until) },
    { label: "col.attempts", title: def.attempts, sort: "attempts", cls: "num", render: (r) => fmt(f(r, "attempts")) },
    { label: "col.connect_rate", title: def.connect_rate, sort: "connect_rate", render: (r) => h("span", { class: "withbar" }, ratioBar(f(r, "connect_rate")), pct(f(r, "connect_rate"))) },
    { label: "col.short_ratio", title: def.short_call_ratio, sort: "short_call_ratio", render: (r) => pct(f(r, "short_call_ratio")) },
    { label: "col.complaints", title: def.complaints, sort: "complaints", cls: "num", render: (r) => fmt(f(r, "complaints")) },
    { label: "col.marks", title: def.marks, sort: "marks", cls: "num", render: (r) => fmt(f(r, "marks")) },
    { label: "col.reason", key: "reason" },
  ];
  const panel = h("div", { id: `${kind}-history` });
  const showHistory = (k, key) => {
    view.history = key;  // kept across redraws (a live event redraws the page)
    return history(panel, k, key).catch((e) => flash(e.message, true));
  };
  if (ctx.can("admin")) {
    columns.push({ label: "col.actions", render: (r) => h("span", { class: "actions" },
      partyActions(kind, r, rerender, showHistory), extra.rowAdmin ? extra.rowAdmin(r, rerender) : null) });
  } else {
    columns.push({ label: "col.actions", render: (r) => (String(r.key).includes("*") ? "" :
      h("button", { type: "button", class: "history", onclick: () => showHistory(kind, r.key) }, t("action.history"))) });
  }
  const search = h("form", { class: "toolbar search", id: `${kind}-search` },
    h("input", { name: "q", value: view.q, placeholder: t("search.placeholder") }),
    h("select", { name: "state", title: t("filter.state") }, STATES.map((s) => h("option", { value: s, selected: s === view.state }, s ? t(`state.${s}`) : `${t("filter.state")}: ${t("filter.all")}`))),
    kind === "tenant" ? null : h("select", { name: "tenant", title: t("filter.tenant") },
      h("option", { value: "" }, `${t("filter.tenant")}: ${t("filter.all")}`),
      tenants.map((tn) => h("option", { value: tn.id, selected: tn.id === view.tenant }, `${tn.id} · ${tn.name}`))),
    h("button", { type: "submit" }, t("search")));
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    view.q = search.elements.q.value.trim();
    view.state = search.elements.state.value;
    view.tenant = search.elements.tenant ? search.elements.tenant.value : "";
    view.offset = 0;
    rerender();
  });
  const title = { account: "accounts.title", caller_id: "callers.title", tenant: "tenants.title" }[kind];
  section.replaceChildren(
    ...(extra.top ? extra.top() : []),  // another module's part of the page, first
    ctx.can("admin") && extra.create ? h("div", { class: "card" }, extra.create(tenants, rerender)) : "",
    h("div", { class: "card" }, h("h3", {}, t(title)), search,
      table(columns, data.rows, (r) => ({ "data-party": r.key, "data-state": r.state }), view, rerender),
      pager(view, data.rows.length, data.total, false, rerender)),
    panel);
  if (view.history) await showHistory(kind, view.history);
  if (extra.after) await extra.after();  // fills what extra.top drew
}

function expiry(row) {
  if (!row.verified_until) return "–";
  const left = Date.parse(row.verified_until) - Date.now();
  const cls = left < 0 ? "expired" : left < 30 * 86400e3 ? "expiring" : "";
  return h("span", { class: cls }, time(row.verified_until),
    cls ? h("span", { class: `badge ${cls}` }, t(cls === "expired" ? "callers.expired" : "callers.expiring")) : "");
}

function stateToggle(path, row, reload) {
  const disabled = row.state === "disabled" && !row.reason;  // the admin state, not a ban
  return h("button", { type: "button", class: "admin-state", onclick: async () => {
    try {
      await api("PATCH", path, { state: disabled ? "active" : "disabled" });
      flash(t("action.saved"));
      await reload();
    } catch (e) { flash(`${t("error")}: ${e.message}`, true); }
  } }, t(disabled ? "action.enable" : "action.disable"));
}

const tenantOptions = (tenants) => tenants.map((tn) => [tn.id, `${tn.id} · ${tn.name}`]);

page({
  id: "accounts", label: "tab.accounts", order: 20,
  render: (ctx) => partyPage("account", ctx, {
    create: (tenants, reload) => [h("h3", {}, t("accounts.new")), form("account-create", [
      { name: "id", label: "col.id", required: true, placeholder: "agent-1001" },
      { name: "tenant", label: "col.tenant", type: "select", options: tenantOptions(tenants) },
      { name: "kind", label: "accounts.kind", type: "select", options: ["agent", "campaign", "trunk"].map((k) => [k, k]) },
      { name: "name", label: "accounts.name" },
    ], "accounts.new", async (v) => {
      await api("POST", "/api/accounts", v);
      await reload();
      flash(`${t("action.saved")}: ${v.id}`);
    })],
    rowAdmin: (r, reload) => stateToggle(`/api/accounts/${encodeURIComponent(r.key)}`, r, reload),
  }),
  onEvent: (type, ev, ctx) => { if (type === "enforcement") ctx.rerender(); },
});

page({
  id: "callers", label: "tab.callers", order: 30,
  // the connect-rate warning and remediation tasks (health.js) on top
  render: (ctx) => partyPage("caller_id", ctx, { ...CALLER_EXTRA, ...healthPart(ctx) }),
  onEvent: (type, ev, ctx) => { if (type === "enforcement") ctx.rerender(); },
});

const CALLER_EXTRA = {
    create: (tenants, reload) => [h("h3", {}, t("callers.put")), form("caller-put", [
      { name: "number", label: "callers.number", required: true, placeholder: "01088886666" },
      { name: "tenant", label: "col.tenant", type: "select", options: tenantOptions(tenants) },
      { name: "verification", label: "col.verification", type: "select",
        options: ["verified", "pending", "missing", "rejected"].map((v) => [v, t(`verification.${v}`)]) },
      { name: "verified_until", label: "col.verified_until", type: "date" },
      { name: "state", label: "col.admin_state", type: "select", options: [["active", t("state.active")], ["disabled", t("state.disabled")]] },
    ], "action.confirm", async (v) => {
      const body = { tenant: v.tenant, verification: v.verification, state: v.state };
      if (v.verified_until) body.verified_until = new Date(`${v.verified_until}T23:59:59`).toISOString();
      const c = await api("PUT", `/api/caller-ids/${encodeURIComponent(v.number)}`, body);
      await reload();
      flash(`${t("action.saved")}: ${c.e164}`);
    })],
};

page({
  id: "tenants", label: "tab.tenants", order: 35,
  render: (ctx) => partyPage("tenant", ctx, {
    create: (tenants, reload) => [h("h3", {}, t("tenants.new")), form("tenant-create", [
      { name: "id", label: "col.id", required: true, placeholder: "acme" },
      { name: "name", label: "tenants.name", required: true },
    ], "tenants.new", async (v) => {
      await api("POST", "/api/tenants", v);
      await reload();
      flash(`${t("action.saved")}: ${v.id}`);
    })],
    rowAdmin: (r, reload) => stateToggle(`/api/tenants/${encodeURIComponent(r.key)}`, r, reload),
  }),
});

