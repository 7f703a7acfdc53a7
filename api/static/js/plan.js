// Plan: the next 24-48 h of the latest plan as charts, with the reason behind each next action.
import { get } from "./api.js";
import { destroyCharts, timeChart } from "./charts.js";
import { dayTime, el, eur, kw } from "./format.js";
import { col, pick, planDevices } from "./columns.js";

// The API says why each device does what it does next; the page only labels it.
const KIND_LABEL = { battery: "Battery", wallbox: "EV charger", heat_pump: "Heat pump" };
const ACTION_LABEL = {
  charge: "charging", discharge: "discharging", hold: "holding", wait: "waiting",
  heat: "heating", off: "off",
};

const HORIZON_H = 48;
const COLORS = { pv: "#e5a800", load: "#2f6fb3", battery: "#1b8a5a", grid: "#7a4fbf", ev: "#d2487a", hp: "#d66a1f", export: "#0f7b55", import: "#b3541e" };

export async function renderPlan(container, site) {
  const base = `/v1/app/sites/${encodeURIComponent(site.id)}`;
  const [plan, wallboxes, heatpumps] = await Promise.all([
    get(`${base}/plan`),
    get(`${base}/wallboxes`),
    get(`${base}/heatpumps`),
  ]);
  const tz = site.timezone;
  container.append(el("h1", {}, `${site.name}: plan`));
  if (!plan.slots.length) {
    container.append(el("p", { class: "note", id: "no-plan" }, "No plan yet: the scheduler has not stored a plan for this site (or it has run out)."));
    return () => {};
  }
  const end = Date.parse(plan.slots[0].start) + HORIZON_H * 3600e3;
  const slots = plan.slots.filter((s) => Date.parse(s.start) < end);
  const x = slots.map((s) => Date.parse(s.start) / 1000);
  const series = (names) => slots.map((s) => pick(s.values, names) ?? null);
  const has = (names) => slots.some((s) => pick(s.values, names) !== undefined);
  const devices = planDevices(slots, wallboxes.map((w) => w.name), heatpumps.map((h) => h.name));
  const summary = plan.summary || {};
  const cost = summary.cost_eur ?? summary.objective_eur;
  container.append(
    el("p", { class: "muted small", id: "plan-meta" },
      `Plan made ${dayTime(plan.created_at, tz)}, ${slots.length} slots of ${plan.step_minutes} min from ${dayTime(slots[0].start, tz)} (${tz})`,
      cost != null ? `; expected energy bill ${eur(cost)}` : "",
      summary.status ? `; solver: ${summary.status}` : "", "."),
  );

  // Inputs the plan ran on: flagged estimated prices and clear-sky weather, per slot.
  const flagged = (name) => slots.filter((s) => s.values[name] === 1);
  const priceEstimates = flagged("price-is_estimate");
  const weatherEstimates = flagged("weather-is_estimate");
  if (priceEstimates.length || weatherEstimates.length) {
    const parts = [];
    if (priceEstimates.length) {
      parts.push(`prices are estimates in ${priceEstimates.length} of ${slots.length} slots (from ${dayTime(priceEstimates[0].start, tz)}): the day-ahead prices are not published or could not be fetched`);
    }
    if (weatherEstimates.length) {
      parts.push(`the PV forecast is clear sky scaled by recent production in ${weatherEstimates.length} slots (no weather forecast)`);
    }
    container.append(el("p", { class: "note", id: "plan-inputs" }, `Note: ${parts.join("; ")}.`));
  }

  container.append(el("h2", {}, "Next actions"));
  const reasons = el("div", { class: "reasons", id: "reasons" });
  for (const r of plan.reasons || []) {
    const label = KIND_LABEL[r.kind] || r.kind;
    const title = label.toLowerCase() === r.device ? label : `${label} ${r.device}`;
    reasons.append(el("div", { class: "card", "data-device": title, "data-code": r.code },
      el("h3", {}, `${title}: `, el("span", { class: "now" }, ACTION_LABEL[r.action] || r.action)),
      el("p", { class: "why" }, r.text),
      el("p", { class: "muted small" }, `${kw(r.power_kw)} from ${dayTime(r.slot_start, tz)}`)));
  }
  if (!reasons.children.length) reasons.append(el("p", { class: "muted" }, "No plan yet."));
  container.append(reasons);

  const charts = el("div", { class: "charts" });
  container.append(el("h2", {}, "Charts"), charts);
  if (has(col.importPrice)) {
    timeChart(charts, {
      title: "Prices [ct/kWh]", x, tz,
      axes: { ct: { unit: "ct/kWh" } },
      series: [
        { label: "import", values: series(col.importPrice).map((v) => (v == null ? v : v * 100)), color: COLORS.import, unit: "ct/kWh", stepped: true, digits: 1 },
        { label: "export", values: series(col.exportPrice).map((v) => (v == null ? v : v * 100)), color: COLORS.export, unit: "ct/kWh", stepped: true, digits: 1 },
      ],
    });
  }
  const power = [
    { label: "PV forecast", names: col.pvForecast, color: COLORS.pv },
    { label: "house load", names: col.load, color: COLORS.load },
    { label: "battery (+ discharge)", names: col.battery, color: COLORS.battery },
    { label: "grid (+ import)", names: col.grid, color: COLORS.grid, dash: [4, 4] },
    ...devices.wallboxes.map((w) => ({ label: `EV ${w}`, names: col.power(w), color: COLORS.ev })),
    ...devices.heatpumps.map((h) => ({ label: `heat pump ${h}`, names: col.power(h), color: COLORS.hp })),
  ].filter((s) => has(s.names));
  timeChart(charts, {
    title: "Power [kW]", x, tz,
    axes: { kw: { unit: "kW" } },
    series: power.map((s) => ({ label: s.label, values: series(s.names), color: s.color, unit: "kW", stepped: true, dash: s.dash })),
  });
  const socs = [
    { label: "battery SOC", names: col.batterySoc, color: COLORS.battery },
    ...devices.wallboxes.map((w) => ({ label: `EV ${w} SOC`, names: col.soc(w), color: COLORS.ev })),
  ].filter((s) => has(s.names));
  if (socs.length) {
    timeChart(charts, {
      title: "State of charge [%]", x, tz,
      axes: { pct: { unit: "%", range: [0, 100], digits: 0 } },
      series: socs.map((s) => ({ label: s.label, values: series(s.names).map((v) => (v == null ? v : v * 100)), color: s.color, unit: "%", digits: 0 })),
    });
  }
  for (const h of devices.heatpumps.filter((h) => has(col.sgready(h)))) {
    timeChart(charts, {
      title: `Heat pump ${h}: SG-Ready state (1 block, 2 normal, 3 on, 4 force on)`, x, tz, height: 150,
      axes: { sg: { unit: "state", range: [0.5, 4.5], digits: 0 } },
      series: [{ label: "SG-Ready", values: series(col.sgready(h)), color: COLORS.hp, unit: "", stepped: true, digits: 0 }],
    });
  }
  return destroyCharts;
}
