// Energy per calendar period as SVG bars: one slot per period with one label, and in each
// slot a bar per group, stacked by origin (as Home Assistant's energy dashboard). uPlot draws
// time series; grouped and stacked bars over categories would need its demo plugins, so
// these few rectangles are drawn here. The legend shows the totals of the whole range until
// a period is hovered or tapped, then that period's values.
import { el, num } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const charts = new Set();
let resizeBound = false;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

/** A round step for about ``count`` ticks up to ``max``. */
function niceStep(max, count) {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
}

/**
 * A bar chart of periods.
 * labels: one short label per period; long: the period in words (legend when hovered);
 * groups: [{name, stack: [{label, color, values}]}] side by side in each period;
 * unit, digits: of the values; totalLabel: legend heading for the whole range.
 */
export function barChart(container, { title, labels, long, groups, unit, digits = 1, totalLabel, height = 220 }) {
  const legend = el("div", { class: "legend" });
  const plot = el("div", { class: "bars-plot" });
  const box = el("div", { class: "chart card bars", "data-chart": title }, el("h3", {}, title), plot, legend);
  container.append(box);
  const sum = (values) => values.reduce((a, v) => a + (v ?? 0), 0);

  function showLegend(i) {
    const head = i == null ? totalLabel : long[i];
    const items = groups.flatMap((g) => g.stack.map((s) => el("span", { class: "item", "data-series": s.label },
      el("i", { style: `background:${s.color}` }), `${s.label} `,
      el("b", {}, `${num(i == null ? sum(s.values) : s.values[i], digits)} ${unit}`))));
    legend.replaceChildren(el("span", { class: "when" }, head), ...items);
  }

  function draw() {
    const width = Math.max(260, plot.clientWidth || 600);
    const n = labels.length;
    const left = 44, right = 6, top = 8, bottom = 22;
    const inner = width - left - right;
    const slot = inner / Math.max(n, 1);
    const max = Math.max(1e-9, ...groups.flatMap((g) => labels.map((_, i) => sum(g.stack.map((s) => s.values[i])))));
    const step = niceStep(max, 4);
    const top_ = Math.ceil(max / step) * step;
    const y = (v) => top + (height - top - bottom) * (1 - v / top_);
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
    for (let v = 0; v <= top_ + 1e-9; v += step) {
      root.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }),
        svg("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, num(v, step < 1 ? 1 : 0)));
    }
    // thin the labels so they never touch: about 6 px per character
    const longest = Math.max(...labels.map((l) => l.length), 1);
    const every = Math.max(1, Math.ceil((longest * 6.5 + 6) / slot));
    const gap = Math.min(slot * 0.2, 12);
    const barW = Math.min(48, Math.max(2, (slot - gap) / groups.length - 1));
    const groupW = groups.length * (barW + 1) - 1;
    labels.forEach((label, i) => {
      const x0 = left + (i + 0.5) * slot - groupW / 2;
      groups.forEach((g, k) => {
        let base = 0;
        for (const s of g.stack) {
          const v = Math.max(0, s.values[i] ?? 0);
          if (v > 0) {
            root.append(svg("rect", { x: x0 + k * (barW + 1), y: y(base + v), width: barW, height: Math.max(0.5, y(base) - y(base + v)), fill: s.color, "data-series": s.label }));
          }
          base += v;
        }
      });
      if (i % every === 0) {
        root.append(svg("text", { x: left + (i + 0.5) * slot, y: height - 6, "text-anchor": "middle", class: "tick" }, label));
      }
      const hit = svg("rect", { x: left + i * slot, y: top, width: slot, height: height - top - bottom, class: "hit", "data-index": i });
      hit.addEventListener("pointerenter", () => { hit.classList.add("on"); showLegend(i); });
      hit.addEventListener("pointerleave", () => { hit.classList.remove("on"); showLegend(null); });
      root.append(hit);
    });
    plot.replaceChildren(root);
  }

  draw();
  showLegend(null);
  box._draw = draw;
  charts.add(box);
  if (!resizeBound) {
    resizeBound = true;
    window.addEventListener("resize", () => {
      for (const c of charts) c._draw();
    });
  }
  return box;
}

export function destroyBarCharts() {
  charts.clear();
}
