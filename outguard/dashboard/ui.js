// Small building blocks every page uses: elements, tables with server-side sorting,
// a pager, forms, flash messages, downloads, and dates and numbers in the user's format.

import { ApiError, token } from "./api.js";
import { language, t } from "./i18n.js";

export function $(id) { return document.getElementById(id); }

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// -- roles ------------------------------------------------------------------------------

const RANK = { readonly: 0, reviewer: 1, admin: 2 };
/** Whether the signed-in user's role is at least ``role`` (the API refuses anyway). */
export function can(me, role) { return (RANK[me && me.role] ?? -1) >= RANK[role]; }

// -- formats ----------------------------------------------------------------------------

function locale() { return language() === "zh" ? "zh-CN" : "en-GB"; }

export function fmt(value) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value === "number") {
    return Number.isInteger(value) ? value.toLocaleString(locale())
      : value.toLocaleString(locale(), { maximumFractionDigits: 2 });
  }
  return String(value);
}

export function pct(value) {
  return value == null ? "–" : `${(value * 100).toLocaleString(locale(), { maximumFractionDigits: 1 })}%`;
}

/** A moment (ISO 8601) as date and time in the user's language, in the browser's zone. */
export function time(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short", hour12: false });
}

/** A calendar day or hour the server grouped by ("2026-12-02", "2026-12-02 13:00"),
 * already in the policy's zone: shown in the user's format without moving it. */
export function period(key, by) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):00)?$/.exec(key || "");
  if (!m) return key;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], m[4] ? +m[4] : 0));
  if (by === "hour") return d.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "UTC" });
  return d.toLocaleDateString(locale(), { month: "short", day: "numeric", weekday: "short", timeZone: "UTC" });
}

export function badge(state) { return h("span", { class: `badge ${state}` }, t(`state.${state}`)); }

export function flash(message, isError) {
  const node = $("flash");
  node.textContent = message;
  node.className = isError ? "flash error" : "flash";
  node.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { node.hidden = true; }, 5000);
}

export function errorText(e) {
  return e instanceof ApiError ? `${t("error")}: ${e.message}` : `${t("error")}: ${e.message || e}`;
}

// -- tables -----------------------------------------------------------------------------

/** columns: [{label, key?, render?, cls?, title?, sort?}]; ``view.sort`` is the server's
 * sort key ("-attempts"); clicking a sortable header flips or sets it and calls onSort. */
export function table(columns, rows, rowAttrs, view, onSort) {
  if (!rows.length) return h("p", { class: "muted" }, t("empty"));
  const head = columns.map((c) => {
    const attrs = c.title ? { title: c.title, "data-definition": c.title } : {};
    if (!c.sort || !view) return h("th", attrs, t(c.label));
    const now = view.sort === c.sort ? "asc" : view.sort === `-${c.sort}` ? "desc" : "";
    return h("th", { ...attrs, class: `sortable ${now}`, "data-sort": c.sort, onclick: () => {
      view.sort = view.sort === c.sort ? `-${c.sort}` : c.sort;
      view.offset = 0;
      onSort();
    } }, t(c.label), now ? (now === "asc" ? " ▲" : " ▼") : "");
  });
  return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, head)),
    h("tbody", {}, rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {},
      columns.map((c) => h("td", { class: c.cls || "" }, c.render ? c.render(row) : fmt(row[c.key])))))));
}

/** "1–50 of 2,001" with previous / next; ``total`` null means unknown (use ``more``). */
export function pager(view, shown, total, more, onPage) {
  const from = shown ? view.offset + 1 : 0;
  const to = view.offset + shown;
  const text = total == null ? t("page.range", { from: fmt(from), to: fmt(to) })
    : t("page.of", { from: fmt(from), to: fmt(to), total: fmt(total) });
  const hasNext = total == null ? more : to < total;
  return h("div", { class: "pager" },
    h("button", { class: "prev", disabled: view.offset <= 0, onclick: () => {
      view.offset = Math.max(0, view.offset - view.limit); onPage();
    } }, "‹ ", t("page.prev")),
    h("span", { class: "range" }, text),
    h("button", { class: "next", disabled: !hasNext, onclick: () => {
      view.offset += view.limit; onPage();
    } }, t("page.next"), " ›"));
}

// -- forms ------------------------------------------------------------------------------

/** A form of labelled fields; onSubmit(values, form) runs with the button disabled and
 * shows errors beside the form. fields: [{name, label, type, options, required, value,
 * placeholder}] (type: text | number | select | textarea | file | date | checkbox). */
export function form(id, fields, submitLabel, onSubmit, opts = {}) {
  const status = h("span", { class: "form-status" });
  const inputs = {};
  const body = fields.map((f) => {
    let input;
    if (f.type === "select") {
      input = h("select", { name: f.name }, f.options.map(([value, label]) =>
        h("option", { value, selected: value === f.value }, label)));
    } else if (f.type === "textarea") {
      input = h("textarea", { name: f.name, rows: f.rows || 3, placeholder: f.placeholder || "", required: !!f.required });
      if (f.value) input.value = f.value;
    } else {
      input = h("input", { name: f.name, type: f.type || "text", placeholder: f.placeholder || "",
        required: !!f.required, step: f.step, min: f.min, max: f.max, accept: f.accept,
        checked: f.type === "checkbox" && f.value });
      if (f.value != null && f.type !== "checkbox") input.value = f.value;
    }
    inputs[f.name] = input;
    return h("label", { class: `field ${f.type || "text"}` }, h("span", {}, t(f.label)), input);
  });
  const button = h("button", { type: "submit", class: opts.buttonClass || "primary" }, t(submitLabel));
  const node = h("form", { id, class: `form ${opts.cls || ""}` }, body, button, status);
  node.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = {};
    for (const [name, input] of Object.entries(inputs)) {
      values[name] = input.type === "file" ? input.files[0] : input.type === "checkbox" ? input.checked : input.value.trim();
    }
    button.disabled = true;
    status.className = "form-status";
    status.textContent = "…";
    try {
      const message = await onSubmit(values, node);
      status.textContent = message || "";
    } catch (err) {
      status.className = "form-status error";
      status.textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  });
  node.inputs = inputs;
  return node;
}

/** A small button that asks for a reason inline, then runs ``act(reason)``. */
export function reasoned(label, cls, act, placeholder = "action.reason") {
  const wrap = h("span", { class: "reasoned" });
  const open = h("button", { type: "button", class: cls, onclick: () => {
    const input = h("input", { class: "reason-input", placeholder: t(placeholder), required: true });
    const go = h("button", { type: "submit", class: `${cls} confirm` }, t("action.confirm"));
    const f = h("form", { class: "inline" }, input, go,
      h("button", { type: "button", class: "cancel", onclick: () => wrap.replaceChildren(open) }, "×"));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      go.disabled = true;
      try { await act(input.value.trim()); } catch (err) { flash(errorText(err), true); go.disabled = false; }
    });
    wrap.replaceChildren(f);
    input.focus();
  } }, t(label));
  wrap.append(open);
  return wrap;
}

// -- downloads --------------------------------------------------------------------------

/** GET ``path`` with the token and save the answer as a file; returns {name, bytes, text}. */
export async function download(path, fallbackName) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    throw new ApiError(response.status, body);
  }
  const blob = await response.blob();
  const found = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const name = found ? found[1] : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  const text = await blob.text();
  const last = $("last-download");
  last.dataset.name = name;
  last.dataset.lines = String(text.split("\n").filter((l) => l).length);
  last.dataset.head = text.split("\n")[0].replace(/^\ufeff/, "");
  flash(t("download.done", { name, size: fmt(blob.size) }));
  return { name, bytes: blob.size, text };
}

/** Rejected lines as file:line, reason, text. */
export function rejectTable(rejects, file) {
  return h("div", { class: "rejects" }, h("h4", {}, t("lists.rejects")), table([
    { label: "col.line", render: (r) => `${file || ""}:${r.line}` },
    { label: "col.reason", key: "reason" }, { label: "col.text_raw", key: "text" },
  ], rejects, (r) => ({ "data-line": r.line })));
}
