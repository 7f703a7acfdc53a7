// The reason behind each device's next action, derived in the browser from the plan rows:
// the API's plan carries no reasons, so this reads what the plan does and why it pays.
import { ctPerKwh, hhmm, kw, num } from "./format.js";
import { SGREADY } from "./live.js";

const ON_KW = 0.05;

/** The first of ``names`` present in a slot's values (store and optimizer spellings). */
export function pick(values, names) {
  for (const n of names) if (values[n] !== undefined) return values[n];
  return undefined;
}

export const col = {
  importPrice: ["import-eur_per_kwh", "import_eur_per_kwh"],
  exportPrice: ["export-eur_per_kwh", "export_eur_per_kwh"],
  pvForecast: ["pv-forecast_kw", "pv_forecast_kw", "pv-power_kw", "pv_kw"],
  pv: ["pv-power_kw", "pv_kw"],
  load: ["load-power_kw", "load_kw", "house-power_kw"],
  grid: ["grid-power_kw", "grid_kw"],
  battery: ["battery-power_kw", "battery_kw"],
  batterySoc: ["battery-soc", "battery_soc"],
  power: (d) => [`${d}-power_kw`, `${d}_kw`],
  soc: (d) => [`${d}-soc`, `${d}_soc`],
  sgready: (d) => [`${d}-sgready`, `${d}_sgready`],
  temp: (d) => [`${d}-temp_c`, `${d}_temp_c`],
};

/** Device names in the plan: wallboxes have phases or an SOC, heat pumps an SG-Ready state. */
export function planDevices(slots, wallboxNames, heatpumpNames) {
  const keys = new Set(slots.flatMap((s) => Object.keys(s.values)));
  const device = (k) => k.split(/[-_]/)[0];
  const ev = new Set(wallboxNames.filter((n) => keys.has(`${n}-power_kw`) || keys.has(`${n}_kw`)));
  const hp = new Set(heatpumpNames.filter((n) => keys.has(`${n}-power_kw`) || keys.has(`${n}_kw`)));
  for (const k of keys) {
    if (/[-_]sgready$/.test(k)) hp.add(device(k));
    if (/[-_]phases$/.test(k)) ev.add(device(k));
  }
  return { wallboxes: [...ev], heatpumps: [...hp] };
}

function mean(xs) {
  const v = xs.filter((x) => x != null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

function firstFrom(slots, test) {
  return slots.findIndex((s) => test(s.values));
}

function priceNote(slots, i) {
  const p = pick(slots[i].values, col.importPrice);
  const avg = mean(slots.map((s) => pick(s.values, col.importPrice)));
  if (p == null || avg == null) return "";
  return ` (${ctPerKwh(p)}; plan average ${ctPerKwh(avg)})`;
}

function batteryReason(slots, tz) {
  const b = (v) => pick(v, col.battery) ?? 0;
  const state = (v) => (b(v) > ON_KW ? "discharging" : b(v) < -ON_KW ? "charging" : "idle");
  const now = slots[0].values;
  const s0 = state(now);
  const surplus = (pick(now, col.pv) ?? 0) - (pick(now, col.load) ?? 0);
  let text;
  if (s0 === "charging") {
    text = surplus > ON_KW
      ? `Charging ${kw(-b(now))} from solar surplus (${kw(surplus)} spare).`
      : `Charging ${kw(-b(now))} from the grid in a cheap slot${priceNote(slots, 0)}.`;
  } else if (s0 === "discharging") {
    text = `Discharging ${kw(b(now))} to cover the house instead of importing${priceNote(slots, 0)}.`;
  } else {
    text = "Idle now: neither cheap energy nor a price worth discharging for.";
  }
  const k = firstFrom(slots, (v) => state(v) !== s0);
  let next = "No change planned in this plan.";
  if (k > 0) {
    const v = slots[k].values;
    const solar = state(v) === "charging" && (pick(v, col.pv) ?? 0) - (pick(v, col.load) ?? 0) > ON_KW;
    next = `Next: ${state(v)} from ${hhmm(slots[k].start, tz)}` + (solar ? " with solar surplus." : `${priceNote(slots, k)}.`);
  }
  return { title: "Battery", now: s0, text, next };
}

const MODE_TEXT = {
  off: "charging is switched off (mode off)",
  now: "mode now: charges at full power at once",
  solar: "mode solar: charges from solar surplus only",
  min_solar: "mode min+solar: minimum current, topped up by solar surplus",
  smart: "mode smart: the cheapest hours before departure",
  after_battery: "mode after battery: charges once the home battery is full enough",
};

function wallboxReason(name, slots, prefs, tz) {
  const p = (v) => pick(v, col.power(name)) ?? 0;
  const now = slots[0].values;
  const mode = prefs?.mode;
  const why = MODE_TEXT[mode] || "mode not set";
  const departure = prefs?.departure ? ` Departure ${hhmm(prefs.departure, tz)}` + (prefs.target_kwh != null ? `, ${num(prefs.target_kwh, 0)} kWh wanted.` : ".") : "";
  if (p(now) > ON_KW) {
    return { title: `EV charger ${name}`, now: "charging", text: `Charging ${kw(p(now))}: ${why}${priceNote(slots, 0)}.${departure}`, next: nextStop(slots, p, tz) };
  }
  const k = firstFrom(slots, (v) => p(v) > ON_KW);
  if (k > 0) {
    return { title: `EV charger ${name}`, now: "waiting", text: `Waiting: ${why}.${departure}`, next: `Next: charging ${kw(p(slots[k].values))} from ${hhmm(slots[k].start, tz)}${priceNote(slots, k)}.` };
  }
  return { title: `EV charger ${name}`, now: "not charging", text: `No charging planned: ${mode === "off" ? why : "no car, or it already has what it needs"}.${departure}`, next: "" };
}

function nextStop(slots, p, tz) {
  const k = firstFrom(slots, (v) => p(v) <= ON_KW);
  return k > 0 ? `Stops at ${hhmm(slots[k].start, tz)}.` : "Charges through the whole plan.";
}

function heatpumpReason(name, slots, tz) {
  const sg = (v) => pick(v, col.sgready(name));
  const p = (v) => pick(v, col.power(name)) ?? 0;
  const now = slots[0].values;
  const s0 = sg(now);
  const label = s0 != null ? `SG-Ready ${SGREADY[s0] ?? s0}` : p(now) > ON_KW ? "running" : "off";
  const texts = {
    1: "Blocked: the store is warm enough and heat is cheaper to make later",
    2: "Normal operation: the heat pump follows its own controller",
    3: `Recommended on: runs ${kw(p(now))} while energy is cheap or solar`,
    4: `Forced on: stores heat ahead of need at ${kw(p(now))} in a cheap or sunny slot`,
  };
  const text = (texts[s0] || `Planned power ${kw(p(now))}`) + `${priceNote(slots, 0)}.`;
  const k = firstFrom(slots, (v) => sg(v) !== s0);
  const next = k > 0 ? `Next: SG-Ready ${SGREADY[sg(slots[k].values)] ?? "?"} from ${hhmm(slots[k].start, tz)}.` : "No change planned.";
  return { title: `Heat pump ${name}`, now: label, text, next };
}

/** One reason per device for its next action. */
export function nextActions(slots, devices, wallboxPrefs, tz) {
  if (!slots.length) return [];
  const out = [];
  if (slots.some((s) => pick(s.values, col.battery) !== undefined)) out.push(batteryReason(slots, tz));
  for (const w of devices.wallboxes) out.push(wallboxReason(w, slots, wallboxPrefs[w], tz));
  for (const h of devices.heatpumps) out.push(heatpumpReason(h, slots, tz));
  return out;
}
