// The live energy flow as a diagram: sources (solar, grid, battery) on the left, consumers
// (house, EV, heat pump) on the right, all meeting at the home's busbar in the middle. Each
// line is as thick as its power and points the way the power flows; grid and battery turn
// round when they take power instead of giving it.
import { degC, kw, pct } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 380, H = 250, BOX_W = 122, BOX_H = 60;
const HUB = { x: W / 2, y: H / 2 };
// [device, label, column (0 left, 1 right), row, colour]
const NODES = [
  ["pv", "Solar", 0, 0, "#e5a800"],
  ["grid", "Grid", 0, 1, "#7a4fbf"],
  ["battery", "Battery", 0, 2, "#1b8a5a"],
  ["house", "House", 1, 0, "#2f6fb3"],
  ["wallbox", "EV", 1, 1, "#d2487a"],
  ["heatpump", "Heat pump", 1, 2, "#d66a1f"],
];
const IDLE_KW = 0.01;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

/** Power into the busbar from each device [kW]: + gives, - takes (house, EV, HP always take). */
export function busPower(byDevice) {
  const p = (d) => byDevice[d]?.fields.power_kw;
  const take = (v) => (v == null ? null : -Math.abs(v));
  return { pv: p("pv"), grid: p("grid"), battery: p("battery"), house: take(p("house")), wallbox: take(p("wallbox")), heatpump: take(p("heatpump")) };
}

function detail(device, v, fields) {
  if (v == null) return "no data";
  const a = Math.abs(v);
  if (a < IDLE_KW) return device === "grid" ? "no exchange" : device === "battery" ? "idle" : "0 kW";
  if (device === "grid") return `${v > 0 ? "import" : "export"} ${kw(a)}`;
  if (device === "battery") return `${v > 0 ? "discharge" : "charge"} ${kw(a)}`;
  return kw(a);
}

function extra(device, fields) {
  if (!fields) return null;
  if (device === "battery" && fields.soc != null) return `SOC ${pct(fields.soc)}`;
  if (device === "heatpump" && fields.tank_temp_degc != null) return `store ${degC(fields.tank_temp_degc)}`;
  if (device === "wallbox" && fields.connected === 0) return "unplugged";
  return null;
}

/** The flow diagram of one live view as an <svg> element. */
export function flowDiagram(byDevice) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "flow-diagram", id: "flow-diagram", role: "img", "aria-label": "Energy flow now" });
  const defs = svg("defs");
  for (const [device, , , , color] of NODES) {
    const marker = svg("marker", { id: `arrow-${device}`, viewBox: "0 0 10 10", refX: "7", refY: "5", markerWidth: "4", markerHeight: "4", orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: color }));
    defs.append(marker);
  }
  root.append(defs);
  const power = busPower(byDevice);
  const lines = svg("g");
  const boxes = svg("g");
  for (const [device, label, colIdx, row, color] of NODES) {
    const x = colIdx === 0 ? 6 : W - 6 - BOX_W;
    const y = 8 + row * ((H - 16 - BOX_H) / 2);
    const edge = { x: colIdx === 0 ? x + BOX_W : x, y: y + BOX_H / 2 };
    const v = power[device];
    const a = Math.abs(v ?? 0);
    const active = v != null && a >= IDLE_KW;
    // into the busbar when v > 0: the path runs from the box to the hub, else from the hub out
    const [from, to] = v > 0 ? [edge, HUB] : [HUB, edge];
    const bend = (from.x + to.x) / 2;
    lines.append(svg("path", {
      d: `M${from.x},${from.y} C${bend},${from.y} ${bend},${to.y} ${to.x},${to.y}`,
      class: `flow${active ? " on" : ""}`, stroke: active ? color : "#c9d2ce", "stroke-width": active ? (1.5 + 3 * Math.sqrt(Math.min(a, 12))).toFixed(1) : 1.2,
      "stroke-dasharray": active ? null : "4 4", "marker-end": active ? `url(#arrow-${device})` : null,
      "data-device": device, "data-direction": !active ? "none" : v > 0 ? "in" : "out",
    }));
    const fields = byDevice[device]?.fields;
    const g = svg("g", { class: `node${v == null ? " missing" : ""}`, "data-node": device, "data-kw": v == null ? "" : a.toFixed(2) });
    g.append(svg("rect", { x, y, width: BOX_W, height: BOX_H, rx: 9, fill: "#fff", stroke: color, "stroke-width": 2 }));
    g.append(svg("text", { x: x + 8, y: y + 18, class: "name" }, label));
    g.append(svg("text", { x: x + 8, y: y + 36, class: "power" }, detail(device, v, fields)));
    const more = extra(device, fields);
    if (more) g.append(svg("text", { x: x + 8, y: y + 52, class: "more" }, more));
    boxes.append(g);
  }
  root.append(lines, svg("circle", { cx: HUB.x, cy: HUB.y, r: 7, fill: "#0f3d2e" }), boxes);
  return root;
}
