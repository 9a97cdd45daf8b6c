// The dashboard's pages. Each page is its own module that calls page({...}) once:
//   id      the URL hash and the section's id (page-<id>)
//   label   its tab's i18n key
//   role    the least role that sees the tab (readonly < reviewer < admin); what a page
//           offers inside is gated with can() from ui.js, and the API refuses anyway
//   order   the tab's place
//   render  async (ctx) => draws the page into ctx.section (again on every visit and on
//           a language switch, so everything on screen is redrawn in the new language);
//           ctx = {me, section, rerender, can(role)}
//   onEvent optional (type, event, ctx): a live event while the page is shown
// Add a page: a new module that calls page(), and one import line in pages.js.

export const PAGES = [];

export function page(spec) {
  if (PAGES.some((p) => p.id === spec.id)) throw new Error(`two pages named ${spec.id}`);
  PAGES.push({ role: "readonly", order: 50, ...spec });
  PAGES.sort((a, b) => a.order - b.order);
}
