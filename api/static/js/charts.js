// Small wrappers around uPlot (vendored, global `uPlot`): time charts in the site's zone.
import { el, num } from "./format.js";

const charts = new Set();
let resizeBound = false;

function width(container) {
  return Math.max(280, container.clientWidth || 600);
}

function timeLabels(tz, spanS, format) {
  if (format || spanS > 20 * 86400) {
    const f = new Intl.DateTimeFormat("en-GB", { timeZone: tz, ...(format || { day: "numeric", month: "short" }) });
    return (u, splits) => splits.map((ts) => f.format(new Date(ts * 1e3)));
  }
  // Hours and minutes; the weekday only where the local day changes (and on the first tick).
  const time = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const weekday = new Intl.DateTimeFormat("en-GB", { timeZone: tz, weekday: "short" });
  return (u, splits) => {
    let last = null;
    return splits.map((ts) => {
      const d = new Date(ts * 1e3);
      const wd = weekday.format(d);
      const label = wd === last ? time.format(d) : `${wd} ${time.format(d)}`;
      last = wd;
      return label;
    });
  };
}

/**
 * A time chart. series: [{label, values, color, unit, stepped, bars, barSize, points, dash}]
 * x: unix seconds; axes: {scaleName: {unit, range, digits, zero}}; pad: seconds added
 * on both sides of x (bars of calendar periods); format: Intl options of the time labels.
 */
export function timeChart(container, { title, x, series, axes, tz, height = 220, pad = 0, format }) {
  const box = el("div", { class: "chart card", "data-chart": title }, el("h3", {}, title));
  container.append(box);
  const scaleNames = Object.keys(axes);
  const opts = {
    width: width(box) - 32,
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
    scales: {
      x: { time: true, ...(pad ? { range: () => [x[0] - pad, x[x.length - 1] + pad] } : {}) },
      ...Object.fromEntries(scaleNames.map((s) => [s, {
        range: axes[s].range ?? (axes[s].zero ? (u, lo, hi) => [Math.min(0, lo), Math.max(hi * 1.1, 1)] : undefined),
      }])),
    },
    legend: { live: true },
    // Not hovered, the legend shows the first slot (now) instead of "Time: --".
    hooks: {
      ready: [(u) => u.setLegend({ idx: 0 })],
      setCursor: [(u) => { if (u.cursor.idx == null) u.setLegend({ idx: 0 }); }],
    },
    cursor: { drag: { x: false, y: false } },
    series: [
      {},
      ...series.map((s) => ({
        label: s.label,
        scale: s.scale || scaleNames[0],
        stroke: s.color,
        fill: s.bars ? `${s.color}cc` : s.fill,
        width: s.bars ? 0 : 2,
        dash: s.dash,
        points: { show: s.points ?? false },
        paths: s.bars
          ? uPlot.paths.bars({ size: [s.barSize ?? 0.6, 120], align: 0 })
          : s.stepped
            ? uPlot.paths.stepped({ align: 1 })
            : undefined,
        value: (u, v) => (v == null ? "–" : `${num(v, s.digits ?? 2)} ${s.unit}`),
      })),
    ],
    axes: [
      { stroke: "#5e6e67", values: timeLabels(tz, x.length ? x[x.length - 1] - x[0] + 2 * pad : 0, format), size: 40, space: 75 },
      ...scaleNames.map((s, i) => ({
        scale: s,
        side: i === 0 ? 3 : 1,
        label: axes[s].unit,
        stroke: "#5e6e67",
        grid: { show: i === 0 },
        size: 56,
        values: (u, vals) => vals.map((v) => num(v, axes[s].digits ?? 1)),
      })),
    ],
  };
  const data = [x, ...series.map((s) => s.values)];
  const chart = new uPlot(opts, data, box);
  chart._box = box;
  charts.add(chart);
  if (!resizeBound) {
    resizeBound = true;
    window.addEventListener("resize", () => {
      for (const c of charts) c.setSize({ width: width(c._box) - 32, height: c.height });
    });
  }
  return chart;
}

export function destroyCharts() {
  for (const c of charts) c.destroy();
  charts.clear();
}
