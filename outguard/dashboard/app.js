// The dashboard's shell: sign-in, the tabs (from the page registry, by role), the live
// stream, and the language switch (which redraws everything on screen).

import { ApiError, api, clearToken, setToken, stream, token } from "./api.js";
import { applyLabels, t, toggleLanguage } from "./i18n.js";
import { drawFeed, liveEvent, seedLive, showStreamState, unseed } from "./live.js";
import "./pages.js";
import { PAGES } from "./registry.js";
import { $, can, errorText, flash, h } from "./ui.js";

const state = { page: "live", me: null, stop: null };

// -- sign-in --------------------------------------------------------------------------

async function signIn() {
  try {
    state.me = await api("GET", "/api/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { clearToken(); showLogin(true); return; }
    throw e;
  }
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  showWho();
  document.body.dataset.role = state.me.role;
  buildTabs();
  unseed();
  startStream();  // events arriving before the seed is in are held, then replayed
  await seedLive();
  show(location.hash.slice(1) || "live");
}

function showWho() {
  $("who").textContent = `${state.me.name} (${t(`role.${state.me.role}`)})`;
}

function showLogin(failed) {
  $("login").hidden = false;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  for (const section of document.querySelectorAll(".page")) section.hidden = true;
  $("login-error").hidden = !failed;
  $("login-error").textContent = t("login.failed");
}

// -- pages ----------------------------------------------------------------------------

function visible() { return PAGES.filter((p) => can(state.me, p.role)); }

function buildTabs() {
  $("tabs").replaceChildren(...visible().map((p) => h("button", {
    "data-page": p.id, "data-i18n": p.label, onclick: () => show(p.id) }, t(p.label))));
}

function section(spec) {
  let node = $(`page-${spec.id}`);
  if (!node) {
    node = h("section", { id: `page-${spec.id}`, class: "page", hidden: true });
    $("pages").append(node);
  }
  return node;
}

function show(id) {
  const spec = visible().find((p) => p.id === id) || visible()[0];
  state.page = spec.id;
  history.replaceState(null, "", `#${spec.id}`);
  for (const node of document.querySelectorAll(".page")) node.hidden = node.id !== `page-${spec.id}`;
  section(spec).hidden = false;
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.page === spec.id);
  }
  render();
}

function context(spec) {
  return { me: state.me, section: section(spec), rerender: render, can: (role) => can(state.me, role) };
}

async function render() {
  const spec = PAGES.find((p) => p.id === state.page);
  const node = section(spec);
  node.dataset.loading = "1";
  try {
    await spec.render(context(spec));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { clearToken(); showLogin(true); return; }
    flash(errorText(e), true);
  } finally {
    delete node.dataset.loading;
    node.dataset.rendered = String(Number(node.dataset.rendered || 0) + 1);
  }
}

// -- the stream -------------------------------------------------------------------------

function startStream() {
  if (state.stop) state.stop();
  state.stop = stream(onEvent, (up) => showStreamState(up));
}

function onEvent(type, ev) {
  liveEvent(type, ev);
  const spec = PAGES.find((p) => p.id === state.page);
  const node = spec && $(`page-${spec.id}`);
  // never redraw under a person's hands: not while they type or have a form open
  if (spec && spec.onEvent && !node.contains(document.activeElement) && !node.querySelector("form.inline")) {
    spec.onEvent(type, ev, context(spec));
  }
}

// -- wiring ---------------------------------------------------------------------------

function wire() {
  applyLabels();
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token-input").value.trim());
    $("token-input").value = "";
    signIn();
  });
  $("logout").addEventListener("click", () => {
    if (state.stop) state.stop();
    clearToken();
    showLogin(false);
  });
  $("lang").addEventListener("click", () => {
    toggleLanguage();
    if (state.me) { showWho(); drawFeed(); showStreamState(); render(); }
  });
  setInterval(() => { if (state.me && ["live", "overview"].includes(state.page)) render(); }, 15000);
  if (token()) signIn(); else showLogin(false);
}

wire();
