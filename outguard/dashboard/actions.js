// What an admin does to a party from any page: suspend (for a duration, the policy's next
// grade, or permanently), lift, and read its history. One home, used by the parties
// pages and the suspensions page.

import { api } from "./api.js";
import { reason as reasonWords, t } from "./i18n.js";
import { badge, flash, h, reasoned, table, time } from "./ui.js";

export const DURATIONS = ["3600", "86400", "604800", "2592000", "grade", "permanent"];

export function partyName(kind, key) { return `${t(`party.${kind}`)} ${key}`; }

/** POST /api/suspend (or /api/disable for "permanent"); returns the flash text. */
export async function suspendParty(kind, key, duration, why) {
  const party = partyName(kind, key);
  if (duration === "permanent") {
    await api("POST", "/api/disable", { kind, key, reason: why });
    return t("susp.disabled_done", { party });
  }
  const body = { kind, key, reason: why };
  if (duration !== "grade") body.duration_s = Number(duration);
  const s = await api("POST", "/api/suspend", body);
  return t("susp.done", { party, until: s.ends_at ? time(s.ends_at) : t("susp.permanent") });
}

export async function liftParty(kind, key, why) {
  const done = await api("POST", "/api/lift", { kind, key, reason: why });
  return t("susp.lifted", { n: done.lifted.length, party: partyName(kind, key) });
}

/** The row's actions: lift when banned, else suspend with a duration, and history. */
export function partyActions(kind, row, reload, showHistory) {
  const banned = row.state === "suspended" || row.state === "disabled";
  const masked = String(row.key).includes("*");  // a masked caller ID: use the form above
  const parts = [];
  if (!masked && banned) {
    parts.push(reasoned("action.lift", "lift", async (why) => { flash(await liftParty(kind, row.key, why)); await reload(); }));
  } else if (!masked) {
    parts.push(suspendButton(kind, row.key, reload));
  }
  if (showHistory && !masked) {
    parts.push(h("button", { type: "button", class: "history", onclick: () => showHistory(kind, row.key) }, t("action.history")));
  }
  return h("span", { class: "actions" }, parts);
}

function suspendButton(kind, key, reload) {
  const wrap = h("span", { class: "reasoned" });
  const open = h("button", { type: "button", class: "suspend", onclick: () => {
    const duration = h("select", { class: "duration" }, DURATIONS.map((d) => h("option", { value: d, selected: d === "86400" }, t(`dur.${d}`))));
    const input = h("input", { class: "reason-input", placeholder: t("action.reason"), required: true });
    const go = h("button", { type: "submit", class: "suspend confirm" }, t("action.confirm"));
    const f = h("form", { class: "inline" }, duration, input, go,
      h("button", { type: "button", class: "cancel", onclick: () => wrap.replaceChildren(open) }, "×"));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      go.disabled = true;
      try {
        flash(await suspendParty(kind, key, duration.value, input.value.trim()));
        await reload();
      } catch (err) { flash(`${t("error")}: ${err.message}`, true); go.disabled = false; }
    });
    wrap.replaceChildren(f);
    input.focus();
  } }, t("action.suspend_for"));
  wrap.append(open);
  return wrap;
}

/** A party's status, strikes, suspension history and appeals, into ``target``. */
export async function history(target, kind, key) {
  const st = await api("GET", `/api/status/${encodeURIComponent(kind)}/${encodeURIComponent(key)}`);
  const rows = st.history || [];
  target.replaceChildren(h("div", { class: "card history-panel", "data-party": key },
    h("h3", {}, t("history.title", { party: partyName(kind, key) }), " ", badge(st.state)),
    h("p", { class: "muted" }, t("history.strikes", { n: st.strikes ?? 0 })),
    suspensionTable(rows)));
}

export function suspensionTable(rows, actions) {
  const columns = [
    { label: "col.party", render: (s) => partyName(s.party_kind, s.party_key) },
    { label: "col.reason", render: (s) => h("span", { title: s.trigger || "" }, reasonWords(s.reason) ) },
    { label: "col.started", render: (s) => time(s.started_at) },
    { label: "col.ends", render: (s) => (s.permanent ? t("susp.permanent") : time(s.ends_at)) },
    { label: "col.by", key: "created_by" },
    { label: "col.lifted", render: (s) => (s.lifted_at ? `${time(s.lifted_at)} · ${s.lifted_by || ""} · ${s.lift_reason || ""}` : "–") },
  ];
  if (actions) columns.push({ label: "col.actions", render: actions });
  return table(columns, rows, (s) => ({ "data-suspension": s.id, "data-party": s.party_key,
                                        "data-lifted": s.lifted_at ? "1" : "0" }));
}
