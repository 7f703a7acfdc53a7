// Live view: power flows of PV, grid, battery, house, EV and heat pump from the live stream.
import { ApiError, events, get, refresh } from "./api.js";
import { addDays, age, clock, degC, el, eur, kw, kwh, localDate, pct } from "./format.js";
import { flowDiagram } from "./flow.js";
import { siteUnavailable } from "./main.js";
import { controlTile } from "./control.js";

const STALE_S = 300;
const WALLBOX_STATES = ["unknown", "no car (A)", "car connected (B)", "charging (C)", "charging, ventilated (D)", "no power (E)", "fault (F)"];
export const SGREADY = ["unknown", "1 blocked", "2 normal", "3 recommended on", "4 forced on"];
const TILES = [
  ["pv", "Solar (PV)"],
  ["grid", "Grid"],
  ["battery", "Battery"],
  ["house", "House"],
  ["wallbox", "EV charger"],
  ["heatpump", "Heat pump"],
];

function flowText(device, f) {
  const p = f.power_kw ?? 0;
  const idle = Math.abs(p) < 0.01;
  switch (device) {
    case "pv": return idle ? "not producing" : "producing";
    case "grid": return idle ? "no exchange" : p > 0 ? "importing from the grid" : "exporting to the grid";
    case "battery": return idle ? "idle" : p > 0 ? "discharging" : "charging";
    case "house": return "consumption of the house";
    case "wallbox": return WALLBOX_STATES[f.state ?? 0] + (f.connected === 0 ? ", unplugged" : "");
    case "heatpump": return `SG-Ready ${SGREADY[f.sgready ?? 0]}`;
    default: return "";
  }
}

/** Where the power comes from and where it goes, as one line. */
function flows(byDevice) {
  const p = (d) => byDevice[d]?.fields.power_kw ?? 0;
  const part = (name, v) => (v > 0.005 ? `${name} ${kw(v)}` : null);
  const from = [part("solar", p("pv")), part("grid", p("grid")), part("battery", p("battery"))].filter(Boolean);
  const to = [part("house", p("house")), part("EV", p("wallbox")), part("heat pump", p("heatpump")),
    part("battery", -p("battery")), part("grid", -p("grid"))].filter(Boolean);
  return `From ${from.join(" + ") || "nothing"} → to ${to.join(" + ") || "nothing"}.`;
}

function tile(device, title, reading, tz) {
  if (!reading) {
    return el("article", { class: "tile missing", "data-device": device },
      el("h3", {}, title), el("div", { class: "value" }, "–"), el("div", { class: "age" }, "no data"));
  }
  const f = reading.fields;
  const extra = [];
  if (device === "battery" && f.soc != null) {
    extra.push(el("div", { class: "soc", "data-field": "soc" }, `SOC ${pct(f.soc)}`),
      el("div", { class: "soc-bar" }, el("span", { style: `width:${Math.round(f.soc * 100)}%` })));
  }
  if (device === "heatpump" && f.tank_temp_degc != null) extra.push(el("div", { "data-field": "store" }, `hot-water store ${degC(f.tank_temp_degc)}`));
  if (device === "heatpump" && f.indoor_temp_degc != null) extra.push(el("div", {}, `indoor ${degC(f.indoor_temp_degc)}`));
  return el("article", { class: `tile${reading.age_s > STALE_S ? " stale" : ""}`, "data-device": device },
    el("h3", {}, title),
    el("div", { class: "value", "data-field": "power_kw" }, kw(Math.abs(f.power_kw ?? 0))),
    el("div", { class: "flow" }, flowText(device, f)),
    ...extra,
    el("div", { class: "age" }, measured(reading, tz)));
}

/** The reading's own time (a frozen demo clock would say "0 s ago" forever), and its age
 * once it is old enough to matter. */
function measured(reading, tz) {
  const at = `measured ${clock(reading.ts, tz)}`;
  return reading.age_s >= 90 ? `${at} (${age(reading.age_s)})` : at;
}

/** Today so far in words: energy used and where it came from, solar, grid and money. */
function todayText(p) {
  if (!p) return "Today so far: no readings yet.";
  const own = p.autarky == null ? "" : ` (${pct(p.autarky)} from own solar and battery)`;
  const money = p.cost_eur < 0 ? `you earned ${eur(-p.cost_eur)} net from export` : `energy cost ${eur(p.cost_eur)} net`;
  return `Today so far: used ${kwh(p.consumption_kwh)}${own}; solar ${kwh(p.pv_kwh)}; ` +
    `import ${kwh(p.import_kwh)}, export ${kwh(p.export_kwh)}; ${money}.`;
}

function summary(byDevice) {
  const p = (d) => byDevice[d]?.fields.power_kw ?? 0;
  const own = p("pv") + Math.max(p("battery"), 0);
  const use = p("house") + p("wallbox") + p("heatpump");
  if (!Object.keys(byDevice).length) return "No readings from this site's box yet.";
  const share = use > 0 ? Math.min(1, own / use) : null;
  return `${flows(byDevice)} Using ${kw(use)}` + (share == null ? "." : `, ${pct(share)} of it from own solar and battery.`);
}

export async function renderLive(container, site) {
  const status = el("p", { class: "stream", id: "stream-status" }, el("span", { class: "dot" }), "connecting…");
  const asOf = el("p", { class: "muted small", id: "as-of" }, "");
  const tiles = el("div", { class: "tiles", id: "tiles" });
  const line = el("p", { class: "flowline", id: "flowline" }, "");
  const [control, stopControl] = controlTile(site);
  const diagram = el("div", { class: "card flow-card" });
  const today = el("p", { class: "today card", id: "today" }, "Today so far: …");
  container.append(el("h1", {}, `${site.name}: live`), control, status, diagram, today, tiles, line, asOf);
  const controller = new AbortController();
  let stopped = false;
  let todayAt = 0;
  const tz = site.timezone;

  async function drawToday(asOfIso) {
    // the day's totals change slowly: once a minute is plenty
    if (Date.now() - todayAt < 60e3) return;
    todayAt = Date.now();
    const day = localDate(asOfIso, tz);
    const base = `/v1/app/sites/${encodeURIComponent(site.id)}`;
    try {
      const data = await get(`${base}/highlights?period=day&start=${day}&end=${addDays(day, 1)}`);
      today.textContent = todayText(data.periods[data.periods.length - 1]);
    } catch (exc) {
      // e.g. a gap in today's telemetry: say so, and try again in a minute
      today.textContent = exc instanceof ApiError && exc.code === "no_telemetry"
        ? todayText(null) : `Today so far: not available (${exc.message}).`;
    }
  }

  function draw(live) {
    const byDevice = Object.fromEntries(live.devices.map((d) => [d.device, d]));
    diagram.replaceChildren(flowDiagram(byDevice));
    tiles.replaceChildren(...TILES.map(([d, title]) => tile(d, title, byDevice[d], tz)));
    line.textContent = summary(byDevice);
    const newest = live.devices.length ? Math.min(...live.devices.map((d) => d.age_s)) : null;
    const newestTs = live.devices.length ? live.devices.reduce((a, d) => (Date.parse(d.ts) > Date.parse(a) ? d.ts : a), live.devices[0].ts) : null;
    asOf.textContent = `As of ${clock(live.as_of, tz)} (${tz}); newest reading ` +
      (newestTs ? `${clock(newestTs, tz)}${newest >= 90 ? ` (${age(newest)})` : ""}.` : "none yet.");
    if (live.devices.length) drawToday(live.as_of);
  }

  function setStatus(on, text) {
    status.classList.toggle("on", on);
    status.lastChild.textContent = text;
  }

  (async () => {
    const path = `/v1/app/sites/${encodeURIComponent(site.id)}/live/stream`;
    while (!stopped) {
      let reason = "network";
      try {
        for await (const { event, data } of events(path, controller.signal)) {
          if (event === "live") {
            draw(data);
            setStatus(true, "live: updates every few seconds");
          } else if (event === "end") {
            reason = data.reason;
          }
        }
      } catch (exc) {
        if (stopped) return;
        if (exc instanceof ApiError && (exc.status === 404 || exc.status === 403)) {
          siteUnavailable();
          return;
        }
        reason = exc instanceof ApiError && exc.status === 401 ? "token_expired" : "network";
      }
      if (stopped) return;
      if (reason === "access_lost") {
        siteUnavailable();
        return;
      }
      setStatus(false, "reconnecting…");
      try {
        if (reason === "token_expired") await refresh();
      } catch {
        location.hash = "#/signin";
        return;
      }
      if (reason === "network") await new Promise((r) => setTimeout(r, 3000));
    }
  })();

  return () => {
    stopped = true;
    stopControl();
    controller.abort();
  };
}
