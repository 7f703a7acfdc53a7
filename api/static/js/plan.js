// Plan: the next 24-48 h of the latest plan as charts, with the reason behind each next action.
import { get } from "./api.js";
import { destroyCharts, timeChart } from "./charts.js";
import { ctPerKwh, dayTime, el, eur, hhmm, kw, kwh, pct } from "./format.js";
import { col, pick, planDevices } from "./columns.js";

// The API says why each device does what it does next; the page only labels it.
const KIND_LABEL = { battery: "Battery", wallbox: "EV charger", heat_pump: "Heat pump" };
const ACTION_LABEL = {
  charge: "charging", discharge: "discharging", hold: "holding", wait: "waiting",
  heat: "heating", off: "off",
};

const HORIZON_H = 48;
const COLORS = { pv: "#e5a800", load: "#2f6fb3", battery: "#1b8a5a", grid: "#7a4fbf", ev: "#d2487a", hp: "#d66a1f", export: "#0f7b55", import: "#b3541e" };

/** The plan's net energy money over its horizon, in words an owner reads at a glance. */
function billWords(cost, slots, stepMinutes) {
  const hours = Math.round((slots * stepMinutes) / 60);
  if (Math.abs(cost) < 0.005) return `Over the next ${hours} h your imports and exports about cancel out (0.00 EUR net).`;
  return cost < 0
    ? `Over the next ${hours} h you earn ${eur(-cost)} net from export (what exports earn minus what imports cost).`
    : `Over the next ${hours} h you pay ${eur(cost)} net for energy (imports minus what exports earn).`;
}

const SOURCE = { one_off: "next trip", weekly: "weekly plan", none: "" };

/** What the plan puts into the car by its next departure, and plainly whether that is enough. */
function departureCard(d, tz) {
  const amount = (k, s) => (k == null ? "–" : `${kwh(k)} (${pct(s)})`);
  if (!d.departure) {
    return el("div", { class: "card outlook", "data-wallbox": d.wallbox }, el("h3", {}, `EV charger ${d.wallbox}`), el("p", {}, d.reason));
  }
  const verdict = d.reachable === false ? `Target cannot be reached: ${kwh(d.shortfall_kwh)} short.` : "";
  return el("div", { class: `card outlook${d.reachable === false ? " missed" : ""}`, "data-wallbox": d.wallbox },
    el("h3", {}, `EV charger ${d.wallbox}: leaves ${hhmm(d.departure, tz)}`, d.source !== "none" ? el("span", { class: "muted small" }, ` (${SOURCE[d.source]})`) : ""),
    el("p", {}, `Wanted: ${amount(d.target_kwh, d.target_soc)}. Expected at departure: `, el("strong", { class: "expected" }, amount(d.expected_kwh, d.expected_soc)), "."),
    el("p", { class: "verdict" }, verdict, verdict ? " " : "", d.reason));
}

/** The last week's charging sessions: target, delivered, average price, met. */
async function sessionsTable(base, tz) {
  let data;
  try {
    data = await get(`${base}/ev-sessions`);
  } catch {
    return null; // no telemetry store or prices: the plan page still shows
  }
  if (!data.total) return null;
  const heads = ["plugged in", "left", "target", "delivered", "avg. price", "cost", ""];
  const rows = data.sessions.slice().reverse().map((s) => {
    const cells = [dayTime(s.plugin, tz), dayTime(s.plugout, tz), kwh(s.target_kwh), kwh(s.delivered_kwh),
      ctPerKwh(s.avg_price_eur_per_kwh), eur(s.cost_eur), s.met ? (s.full ? "met (full)" : "met") : "short"];
    return el("tr", { class: s.met ? "" : "missed" }, cells.map((c, i) => el("td", { "data-label": heads[i] }, c)));
  });
  return el("section", { id: "ev-sessions" },
    el("h2", {}, `Charging sessions (last 7 days): ${data.met} of ${data.total} met`),
    el("div", { class: "table-wrap card" }, el("table", { class: "cards-on-phone" },
      el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))), el("tbody", {}, rows))));
}

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
      summary.status ? `; solver: ${summary.status}` : "", "."),
  );
  if (cost != null) container.append(el("p", { class: "bill", id: "plan-bill" }, billWords(cost, plan.slots.length, plan.step_minutes)));
  if ((plan.departures || []).length) {
    container.append(el("h2", {}, "EV departures"),
      el("div", { class: "reasons", id: "departures" }, plan.departures.map((d) => departureCard(d, tz))));
  }
  if (wallboxes.length) {
    const table = await sessionsTable(base, tz);
    if (table) container.append(table);
  }

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
