// Lists (名单): every list with its kind and size; one list's entries searched, sorted
// and paged by the server (a million entries page as fast as ten); for admins: create,
// delete, add and remove numbers, import a file with upload progress and the reject
// report (file:line, reason), export. Litigator lists block whatever consent says; a
// reassigned list's entries show their disconnect date (its results are imported on the
// Compliance page).

import { api, heavy, upload } from "./api.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { download, flash, fmt, form, h, pager, rejectTable, table, time } from "./ui.js";

const KINDS = ["dnc", "blacklist", "complaint", "register", "litigator", "allow", "consent", "reassigned"];
const view = { list: "", q: "", sort: "number", offset: 0, limit: 50, lastImport: null };

page({
  id: "lists", label: "tab.lists", order: 60,
  render: async (ctx) => {
    const { section, rerender } = ctx;
    const admin = ctx.can("admin");
    const lists = await api("GET", "/api/lists");
    if (!lists.some((l) => l.name === view.list)) { view.list = lists.length ? lists[0].name : ""; view.offset = 0; }
    const listTable = table([
      { label: "col.name", render: (l) => h("a", { href: "#lists", class: `listlink ${l.name === view.list ? "active" : ""}`, onclick: (e) => {
        e.preventDefault(); view.list = l.name; view.offset = 0; view.q = ""; view.lastImport = null; rerender();
      } }, l.name) },
      { label: "col.kind", render: (l) => t(`listkind.${l.kind}`) },
      { label: "col.scope", render: (l) => (l.scope_key ? `${t(`scope.${l.scope}`)} ${l.scope_key}` : t(`scope.${l.scope}`)) },
      { label: "col.entries", cls: "num", render: (l) => fmt(l.entries) },
      { label: "col.imported", render: (l) => time(l.imported_at) },
    ], lists, (l) => ({ "data-list": l.name }));
    const left = h("div", { class: "card third" }, h("h3", {}, t("lists.title")), listTable,
      admin ? h("details", { class: "create" }, h("summary", {}, t("lists.new")), form("list-create", [
        { name: "name", label: "lists.name", required: true },
        { name: "kind", label: "lists.kind", type: "select", options: KINDS.map((k) => [k, t(`listkind.${k}`)]) },
        { name: "scope", label: "lists.scope", type: "select", options: ["global", "tenant", "campaign"].map((s) => [s, t(`scope.${s}`)]) },
        { name: "scope_key", label: "lists.scope_key" },
        { name: "description", label: "lists.description" },
      ], "lists.new", async (v) => {
        const body = { ...v };
        if (!body.scope_key) delete body.scope_key;
        await api("POST", "/api/lists", body);
        view.list = v.name; view.offset = 0;
        await rerender();
      })) : "");
    const right = h("div", { class: "card twothirds", id: "list-detail" });
    section.replaceChildren(h("div", { class: "row" }, left, right));
    if (view.list) await entries(right, ctx, lists.find((l) => l.name === view.list));
  },
});

async function entries(target, ctx, list) {
  const { rerender } = ctx;
  const admin = ctx.can("admin");
  const params = new URLSearchParams({ limit: view.limit, offset: view.offset, sort: view.sort });
  if (view.q) params.set("q", view.q);
  const data = await heavy("GET", `/api/lists/${encodeURIComponent(list.name)}/entries?${params}`);
  const search = h("form", { id: "list-search", class: "toolbar" },
    h("input", { id: "list-q", inputmode: "numeric", value: view.q, placeholder: t("lists.search") }),
    h("select", { id: "list-sort" }, [["number", "lists.sort_asc"], ["-number", "lists.sort_desc"]].map(([v, l]) =>
      h("option", { value: v, selected: v === view.sort }, t(l)))),
    h("button", { type: "submit" }, t("lists.go")),
    admin ? h("button", { type: "button", class: "export", onclick: () =>
      download(`/api/lists/${encodeURIComponent(list.name)}/export`, `${list.name}.csv`).catch((e) => flash(e.message, true)) }, t("action.export")) : "");
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    view.q = search.querySelector("#list-q").value.replace(/\D/g, "");
    view.sort = search.querySelector("#list-sort").value;
    view.offset = 0;
    rerender();
  });
  const columns = [
    { label: "col.number", key: "e164" }, { label: "col.expires", render: (e) => time(e.expires_at) },
    { label: "col.source", key: "source" }, { label: "col.reason", key: "reason" },
  ];
  // a reassigned list's entries carry the disconnect date that voids older consent
  if (list.kind === "reassigned") columns.splice(1, 0, { label: "col.disconnected", render: (e) => time(e.disconnected_at) });
  if (admin) {
    columns.push({ label: "col.actions", render: (e) => (e.e164.includes("*") ? "" : h("button", { type: "button", class: "remove", onclick: async () => {
      const done = await api("POST", `/api/lists/${encodeURIComponent(list.name)}/remove`, { numbers: [e.e164] });
      flash(t("lists.removed", { n: done.removed }));
      await rerender();
    } }, t("action.remove"))) });
  }
  const parts = [
    h("h3", {}, t("lists.entries"), " ", h("span", { id: "list-name" }, list.name), " ",
      h("span", { class: "muted" }, `${t(`listkind.${list.kind}`)} · ${fmt(list.entries)}`)),
    search,
    h("div", { id: "entries-table" }, table(columns, data.entries, (e) => ({ "data-entry": e.e164 }))),
    // the list's size from the lists table (counting a million entries per page costs)
    pager(view, data.entries.length, view.q ? null : list.entries, data.more, rerender),
  ];
  if (admin) parts.push(...manage(list, rerender));
  target.replaceChildren(...parts);
}

function manage(list, rerender) {
  const base = `/api/lists/${encodeURIComponent(list.name)}`;
  const numbers = (text) => text.split(/[\s,;]+/).map((n) => n.trim()).filter((n) => n);
  const add = form("list-add", [
    { name: "numbers", label: "lists.numbers", type: "textarea", required: true },
    { name: "expires", label: "lists.expires", type: "date" },
    { name: "reason", label: "lists.reason" },
  ], "lists.add", async (v) => {
    const body = { numbers: numbers(v.numbers) };
    if (v.expires) body.expires_at = new Date(`${v.expires}T23:59:59`).toISOString();
    if (v.reason) body.reason = v.reason;
    const done = await api("POST", `${base}/entries`, body);
    flash(t("lists.added", { n: done.added }));
    await rerender();
  });
  const remove = form("list-remove", [
    { name: "numbers", label: "lists.numbers", type: "textarea", required: true },
  ], "action.remove", async (v) => {
    const done = await api("POST", `${base}/remove`, { numbers: numbers(v.numbers) });
    flash(t("lists.removed", { n: done.removed }));
    await rerender();
  }, { buttonClass: "reject" });
  const progress = h("progress", { id: "import-progress", max: 100, value: 0, hidden: true });
  const progressText = h("span", { id: "import-progress-text", class: "muted" });
  const result = h("div", { id: "import-result" }, view.lastImport ? importResult(view.lastImport) : "");
  const imp = form("list-import", [
    { name: "file", label: "lists.file", type: "file", required: true, accept: ".txt,.csv,text/plain,text/csv" },
    { name: "mode", label: "lists.mode", type: "select", options: [["add", t("lists.mode_add")], ["replace", t("lists.mode_replace")]] },
    { name: "format", label: "lists.format", type: "select", options: ["auto", "text", "csv", "us_registry"].map((f) => [f, f]) },
    { name: "max_reject_ratio", label: "lists.max_reject", type: "number", step: "0.01", min: "0", max: "1", placeholder: "0.01" },
  ], "lists.import", async (v) => {
    const params = new URLSearchParams({ mode: v.mode, format: v.format, filename: v.file.name });
    if (v.max_reject_ratio) params.set("max_reject_ratio", v.max_reject_ratio);
    progress.hidden = false;
    progress.value = 0;
    try {
      const r = await upload(`${base}/import?${params}`, v.file, (sent, total, done) => {
        progress.value = total ? Math.round((100 * sent) / total) : 0;
        progressText.textContent = done ? t("lists.processing") : t("lists.uploading", { pct: `${progress.value}%` });
      });
      view.lastImport = { ok: true, file: v.file.name, ...r };
    } catch (e) {
      view.lastImport = { ok: false, file: v.file.name, message: e.message, rejects: (e.body && e.body.rejects) || [] };
    }
    await rerender();
  });
  return [
    h("div", { class: "row manage" },
      h("div", { class: "half" }, h("h4", {}, t("lists.import")), imp, progress, progressText, result),
      h("div", { class: "half" }, h("details", {}, h("summary", {}, t("lists.add")), add),
        h("details", {}, h("summary", {}, t("action.remove")), remove),
        deleteList(list, rerender))),
  ];
}

function importResult(r) {
  const head = r.ok
    ? h("p", { class: r.rejected ? "warn" : "ok", id: "import-summary" }, `${r.file}: `,
      t("lists.imported", { accepted: fmt(r.accepted), rejected: fmt(r.rejected), total: fmt(r.total) }))
    : h("p", { class: "error", id: "import-summary" }, t("lists.refused", { message: r.message.split("\n")[0] }));
  return h("div", { class: "import-report" }, head, r.rejects && r.rejects.length ? rejectTable(r.rejects, r.file) : "");
}

function deleteList(list, rerender) {
  const wrap = h("span", {});
  const ask = h("button", { type: "button", class: "reject delete-list", onclick: () => {
    wrap.replaceChildren(h("span", {}, t("lists.delete_confirm", { name: list.name }), " "),
      h("button", { type: "button", class: "reject confirm", onclick: async () => {
        await api("DELETE", `/api/lists/${encodeURIComponent(list.name)}`);
        flash(t("lists.deleted", { name: list.name }));
        view.list = "";
        await rerender();
      } }, t("action.confirm")),
      h("button", { type: "button", onclick: () => wrap.replaceChildren(ask) }, "×"));
  } }, t("action.delete"));
  wrap.append(ask);
  return wrap;
}
