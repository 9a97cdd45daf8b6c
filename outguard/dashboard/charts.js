// Small SVG charts of our own: lines over time, grouped columns, horizontal bars.
// No styles in attributes (the page's CSP forbids inline styles): colours come from the
// CSS classes s0..s5 in style.css.

const NS = "http://www.w3.org/2000/svg";
let W = 640;  // set from the container's width by svg(), so text keeps its size
const H = 220, PAD = { left: 48, right: 12, top: 12, bottom: 36 };

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function svg(container, height = H) {
  container.replaceChildren();
  W = Math.max(360, Math.round(container.clientWidth || 640));
  const root = el("svg", { viewBox: `0 0 ${W} ${height}`, class: "svgchart", role: "img" });
  container.appendChild(root);
  return root;
}

// The axis top: four gridline steps of 1, 2 or 5 x 10^n (whole numbers for counts).
function niceMax(value, whole = true) {
  if (value <= 0) return whole ? 4 : 1;
  const quarter = value / 4;
  const step = 10 ** Math.floor(Math.log10(quarter));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * step >= quarter && (!whole || Number.isInteger(m * step) || m * step >= 1)) {
      return Math.max(whole ? 4 : 0, (whole ? Math.ceil(m * step) : m * step) * 4);
    }
  }
  return 40 * step;
}

function text(parent, x, y, content, cls, anchor = "middle") {
  const node = el("text", { x, y, class: cls || "axis", "text-anchor": anchor }, parent);
  node.textContent = content;
  return node;
}

function empty(container, message) {
  const root = svg(container, 80);
  text(root, W / 2, 45, message, "muted");
}

function yAxis(root, max, format, height) {
  const inner = height - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const y = PAD.top + inner - (inner * i) / 4;
    el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "gridline" }, root);
    text(root, PAD.left - 6, y + 4, format(value), "axis", "end");
  }
}

function xLabels(root, labels, xOf, height, axisLabel) {
  if (axisLabel) {  // the caller picks which slots are labelled, and how
    labels.forEach((label, i) => {
      const shown = axisLabel(i);
      if (shown) text(root, xOf(i), height - PAD.bottom + 16, shown, "axis", "middle");
    });
    return;
  }
  // as many labels as fit the width (about 90 px each), never overlapping
  const fit = Math.max(2, Math.floor((W - PAD.left - PAD.right) / 90));
  const every = Math.max(1, Math.ceil(labels.length / fit));
  labels.forEach((label, i) => {
    const last = i === labels.length - 1;
    if ((i % every === 0 && labels.length - 1 - i >= every / 2) || last) {
      const anchor = labels.length > 1 && last ? "end" : i === 0 && labels.length > 1 ? "start" : "middle";
      text(root, xOf(i), height - PAD.bottom + 16, label, "axis", anchor);
    }
  });
}

// A series' colour class: its own ``cls`` (0..5) or its position.
function colour(series, k) { return series.cls != null ? series.cls : k; }

// The legend: every series named, with its definition on hover (a <title>).
function legend(root, series, height) {
  let x = PAD.left;
  series.forEach((s, i) => {
    const name = s.name;
    const g = el("g", { class: "legend-item", "data-series": s.key || name }, root);
    if (s.definition) el("title", {}, g).textContent = `${name}: ${s.definition}`;
    el("rect", { x, y: height - 12, width: 10, height: 10, class: `s${colour(s, i)} fill` }, g);
    const node = text(g, x + 14, height - 3, name, "legend", "start");
    x += 24 + node.getComputedTextLength() + 12;
  });
}

// A shaded band behind the selected slots [from, to] (indices), e.g. the chosen period.
function band(root, xOf, slot, range, height) {
  if (!range) return;
  const [from, to] = range;
  el("rect", { x: xOf(from) - slot / 2, y: PAD.top, width: xOf(to) - xOf(from) + slot,
               height: height - PAD.top - PAD.bottom, class: "selected-band" }, root);
}

// series: [{name, values: [number|null]}], labels: [string]
export function lineChart(container, labels, series, opts = {}) {
  if (!labels.length) return empty(container, opts.empty || "—");
  const height = H;
  const root = svg(container, height);
  const format = opts.format || ((v) => String(Math.round(v)));
  const max = opts.max || niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v != null))));
  const inner = { w: W - PAD.left - PAD.right, h: height - PAD.top - PAD.bottom };
  const xOf = (i) => PAD.left + (labels.length === 1 ? inner.w / 2 : (inner.w * i) / (labels.length - 1));
  const yOf = (v) => PAD.top + inner.h - (inner.h * v) / max;
  yAxis(root, max, format, height);
  band(root, xOf, labels.length > 1 ? inner.w / (labels.length - 1) : inner.w / 4, opts.highlight, height);
  xLabels(root, labels, xOf, height);
  series.forEach((s, k) => {
    let d = "";
    s.values.forEach((v, i) => {
      if (v == null) return;
      d += `${d ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`;
      const dot = el("circle", { cx: xOf(i), cy: yOf(v), r: 3, class: `s${colour(s, k)} fill` }, root);
      el("title", {}, dot).textContent = `${s.name} ${labels[i]}: ${format(v)}`;
    });
    // each series its own dash too, so a line under another stays visible
    el("path", { d, class: `s${colour(s, k)} line dash${k % 3}` }, root);
  });
  legend(root, series, height);
}

// Grouped columns (e.g. allowed and blocked per time bucket): every series side by side;
// a zero is drawn as a flat mark on the axis, so an empty period reads as zero, not as
// missing. opts.highlight: [from, to] slots to shade; opts.onSelect(i): a slot clicked.
export function columnChart(container, labels, series, opts = {}) {
  if (!labels.length) return empty(container, opts.empty || "—");
  const height = opts.height || 160;
  const root = svg(container, height);
  const max = niceMax(Math.max(1, ...series.flatMap((s) => s.values)));
  const inner = { w: W - PAD.left - PAD.right, h: height - PAD.top - PAD.bottom };
  const slot = inner.w / Math.max(1, labels.length);
  const bar = Math.max(1, (slot * 0.8) / series.length);
  yAxis(root, max, (v) => String(Math.round(v)), height);
  band(root, (i) => PAD.left + slot * i + slot / 2, slot, opts.highlight, height);
  xLabels(root, labels, (i) => PAD.left + slot * i + slot / 2, height, opts.axisLabel);
  series.forEach((s, k) => {
    s.values.forEach((v, i) => {
      if (!v) {
        const zero = el("rect", { x: PAD.left + slot * i + slot * 0.1 + bar * k, y: PAD.top + inner.h - 1,
                                  width: bar, height: 1.5, class: `s${colour(s, k)} fill zero` }, root);
        el("title", {}, zero).textContent = `${s.name} ${labels[i]}: 0`;
        return;
      }
      const h = (inner.h * v) / max;
      const rect = el("rect", {
        x: PAD.left + slot * i + slot * 0.1 + bar * k, y: PAD.top + inner.h - h,
        width: bar, height: h, class: `s${colour(s, k)} fill`,
      }, root);
      el("title", {}, rect).textContent = `${s.name} ${labels[i]}: ${v}`;
    });
  });
  if (opts.onSelect) {  // on top: a click anywhere in a slot selects it; hover names all
    labels.forEach((label, i) => {
      const hit = el("rect", { x: PAD.left + slot * i, y: PAD.top, width: slot, height: inner.h,
                               class: "hit", "data-slot": i }, root);
      el("title", {}, hit).textContent = `${label}\n${series.map((s) => `${s.name}: ${s.values[i] || 0}`).join("\n")}`;
      hit.addEventListener("click", () => opts.onSelect(i));
    });
  }
  legend(root, series, height);
}

// Horizontal bars: items [{label, value}], largest first.
export function barChart(container, items, opts = {}) {
  if (!items.length) return empty(container, opts.empty || "—");
  const row = 24;
  const height = PAD.top + row * items.length + 8;
  const root = svg(container, height);
  const max = Math.max(...items.map((i) => i.value));
  const left = 190, right = W - 60;
  items.forEach((item, i) => {
    const y = PAD.top + row * i;
    text(root, left - 8, y + 15, item.label, "axis", "end");
    const width = Math.max(2, ((right - left) * item.value) / max);
    el("rect", { x: left, y: y + 3, width, height: row - 8, class: `s${(i % 5) + 1} fill` }, root);
    text(root, left + width + 6, y + 15, String(item.value), "axis", "start");
  });
}

// A tiny inline bar for a ratio in a table cell (0..1).
export function ratioBar(value) {
  const root = el("svg", { viewBox: "0 0 60 10", class: "ratio", role: "img" });
  el("rect", { x: 0, y: 0, width: 60, height: 10, class: "track" }, root);
  if (value != null) el("rect", { x: 0, y: 0, width: Math.round(60 * Math.min(1, value)), height: 10, class: "s0 fill" }, root);
  return root;
}
