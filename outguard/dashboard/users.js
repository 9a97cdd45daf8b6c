// Users and API tokens (admins only): create a user with a role, disable or enable one,
// create a token (its secret shown once) and revoke one.

import { api } from "./api.js";
import { t } from "./i18n.js";
import { page } from "./registry.js";
import { flash, form, h, table, time } from "./ui.js";

const ROLES = ["readonly", "reviewer", "admin"];
let secret = null;  // the token just created: shown until the page is left

page({
  id: "users", label: "tab.users", role: "admin", order: 80,
  render: async ({ section, rerender }) => {
    const [users, tokens] = await Promise.all([api("GET", "/api/users"), api("GET", "/api/tokens")]);
    const userTable = table([
      { label: "users.name", key: "name" },
      { label: "users.role", render: (u) => t(`role.${u.role}`) },
      { label: "col.state", render: (u) => h("span", { class: `badge ${u.disabled ? "disabled" : "active"}` }, t(u.disabled ? "state.disabled" : "state.active")) },
      { label: "col.created", render: (u) => time(u.created_at) },
      { label: "col.actions", render: (u) => h("button", { type: "button", class: u.disabled ? "lift" : "suspend", onclick: async () => {
        await api("PATCH", `/api/users/${encodeURIComponent(u.name)}`, { disabled: !u.disabled });
        flash(t("action.saved"));
        await rerender();
      } }, t(u.disabled ? "action.enable" : "action.disable")) },
    ], users, (u) => ({ "data-user": u.name, "data-disabled": String(u.disabled) }));
    const tokenTable = table([
      { label: "col.id", key: "id" }, { label: "col.user", key: "user" },
      { label: "col.role", render: (k) => t(`role.${k.role}`) }, { label: "col.label", key: "label" },
      { label: "col.created", render: (k) => time(k.created_at) },
      { label: "col.revoked", render: (k) => (k.revoked ? time(k.revoked_at) : t("no")) },
      { label: "col.actions", render: (k) => (k.revoked ? "" : h("button", { type: "button", class: "reject revoke", onclick: async () => {
        await api("DELETE", `/api/tokens/${encodeURIComponent(k.id)}`);
        flash(t("action.saved"));
        await rerender();
      } }, t("action.revoke"))) },
    ], tokens, (k) => ({ "data-token": k.id, "data-revoked": String(k.revoked) }));
    const names = users.filter((u) => !u.disabled).map((u) => [u.name, `${u.name} (${t(`role.${u.role}`)})`]);
    section.replaceChildren(
      h("div", { class: "row" },
        h("div", { class: "card half" }, h("h3", {}, t("users.title")), form("user-create", [
          { name: "name", label: "users.name", required: true },
          { name: "role", label: "users.role", type: "select", options: ROLES.map((r) => [r, t(`role.${r}`)]) },
        ], "users.new", async (v) => {
          await api("POST", "/api/users", v);
          flash(`${t("action.saved")}: ${v.name}`);
          await rerender();
        }), userTable),
        h("div", { class: "card half" }, h("h3", {}, t("tokens.title")), form("token-create", [
          { name: "user", label: "tokens.user", type: "select", options: names },
          { name: "label", label: "tokens.label" },
        ], "tokens.new", async (v) => {
          const made = await api("POST", "/api/tokens", v);
          secret = { id: made.id, token: made.token };
          await rerender();
        }), secret ? h("p", { class: "secret", id: "token-secret" }, t("tokens.secret"), " ",
          h("code", {}, secret.token)) : "", tokenTable)));
    secret = null;
  },
});
