// Setting up a home, in four steps: the site (name, location, time zone), the box (serial and
// starter code from its label), the equipment (PV, battery, chargers, heat pumps, grid rules)
// and the charging mode. Each step saves through the API before the next one opens, so a
// half-finished set-up is picked up where it stopped (#/site/{id}/setup/{step}).
import { get, post, put } from "./api.js";
import { el } from "./format.js";
import { reasonFor } from "./onboarding.js";

const STEPS = [["site", "Site"], ["pair", "Box"], ["equipment", "Equipment"], ["mode", "Charging"]];
const LOCATION = "hbopt.setup.location.";
const DIRECTIONS = [["0", "north"], ["45", "north-east"], ["90", "east"], ["135", "south-east"], ["180", "south"], ["225", "south-west"], ["270", "west"], ["315", "north-west"]];
const MODES = [
  ["smart", "Smart", "Charges in the cheapest hours and from solar surplus, full by your departure."],
  ["solar", "Solar only", "Charges only from solar surplus; slow on cloudy days."],
  ["min_solar", "Minimum + solar", "Always the minimum current, more when the sun shines."],
  ["after_battery", "After the battery", "Solar surplus once the home battery is full."],
  ["now", "Now", "Full power as soon as the car is plugged in."],
  ["off", "Off", "The charger stays off."],
];

const siteBase = (id) => `/v1/app/sites/${encodeURIComponent(id)}`;

function stepper(current, siteId) {
  const at = STEPS.findIndex(([key]) => key === current);
  return el("ol", { class: "steps", "aria-label": "Set-up steps" },
    STEPS.map(([key, label], i) => {
      const done = i < at;
      const text = `${i + 1}. ${label}`;
      const inner = done && siteId && key !== "site" ? el("a", { href: `#/site/${encodeURIComponent(siteId)}/setup/${key}` }, text) : text;
      return el("li", { class: i === at ? "current" : done ? "done" : "", "aria-current": i === at ? "step" : false }, inner);
    }));
}

function frame(container, step, siteId, title, ...nodes) {
  container.replaceChildren(el("section", { class: "wizard", id: `setup-${step}` }, stepper(step, siteId), el("h1", {}, title), ...nodes));
}

const num = (name, label, value, attrs = {}) =>
  el("label", {}, label, el("input", { name, type: "number", step: "any", inputmode: "decimal", value: value ?? "", "data-field": name, ...attrs }));

function errorBox() {
  return el("p", { class: "error", hidden: true, role: "alert" });
}

const GROUPS = { wallboxes: "EV charger", heat_pumps: "Heat pump" };

/** "EV charger 2, Name" for wallboxes.1.name: the words on the form, not the API's path. */
function fieldLabel(path, input) {
  const label = input?.closest("label")?.firstChild?.textContent || path;
  const [group, index] = path.split(".");
  return GROUPS[group] && /^\d+$/.test(index) ? `${GROUPS[group]} ${Number(index) + 1}, ${label}` : label;
}

/** Mark the inputs the API named in a 422 and say why; other errors go to ``box``. */
function showApiError(form, box, exc) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const lines = [];
  for (const f of exc.fields || []) {
    const path = f.field.replace(/^body\./, "");
    const input = form.querySelector(`[data-field="${CSS.escape(path)}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
    lines.push(`${fieldLabel(path, input)}: ${f.reason}`);
  }
  box.hidden = false;
  box.textContent = lines.length ? lines.join("; ") : exc.message;
  box.scrollIntoView({ block: "nearest" });
}

// -- step 1: the site ---------------------------------------------------------------------------
function zoneSelect(selected) {
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [selected];
  if (!zones.includes(selected)) zones.unshift(selected);
  return el("select", { name: "timezone", "data-field": "timezone", required: true },
    zones.map((z) => el("option", { value: z, selected: z === selected }, z)));
}

export function renderAddSite(container, go) {
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "Europe/Berlin";
  const error = errorBox();
  const lat = num("latitude", "Latitude [° north]", "", { min: -90, max: 90, required: true, placeholder: "52.52" });
  const lon = num("longitude", "Longitude [° east]", "", { min: -180, max: 180, required: true, placeholder: "13.40" });
  const locate = el("button", { type: "button", class: "secondary", id: "locate" }, "Use this device's location");
  locate.addEventListener("click", () => {
    navigator.geolocation?.getCurrentPosition((p) => {
      lat.querySelector("input").value = p.coords.latitude.toFixed(4);
      lon.querySelector("input").value = p.coords.longitude.toFixed(4);
    }, () => { error.hidden = false; error.textContent = "The location is not available; enter it by hand."; });
  });
  const form = el("form", { class: "card form-grid", id: "site-form" },
    el("label", { class: "wide" }, "Name of the site", el("input", { name: "name", required: true, maxlength: 100, placeholder: "Home", "data-field": "name" })),
    el("fieldset", { class: "wide" }, el("legend", {}, "Location (for the solar forecast and weather)"),
      el("div", { class: "row" }, lat, lon), locate),
    el("label", { class: "wide" }, "Time zone", zoneSelect(browserZone)),
    error,
    el("div", { class: "wide actions" }, el("button", { type: "submit" }, "Create site and continue")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const site = await post("/v1/app/sites", { name: data.get("name"), timezone: data.get("timezone") });
      sessionStorage.setItem(LOCATION + site.id, JSON.stringify({ latitude: Number(data.get("latitude")), longitude: Number(data.get("longitude")) }));
      go(`#/site/${encodeURIComponent(site.id)}/setup/pair`);
    } catch (exc) {
      showApiError(form, error, exc);
    }
  });
  frame(container, "site", null, "Add your home", form);
}

// -- step 2: the box ----------------------------------------------------------------------------
export async function renderPair(container, site, go) {
  const base = siteBase(site.id);
  const boxes = (await get(`${base}/boxes`)).filter((b) => b.active);
  const next = () => go(`#/site/${encodeURIComponent(site.id)}/setup/equipment`);
  const error = errorBox();
  const form = el("form", { class: "card form-grid", id: "pair-form" },
    el("p", { class: "muted small wide" }, "Serial number and starter code are printed on the label of your Heartbeat box."),
    el("label", {}, "Serial number", el("input", { name: "serial", required: true, pattern: "[A-Za-z0-9\\-]{4,40}", autocomplete: "off", placeholder: "HB-…", "data-field": "serial" })),
    el("label", {}, "Starter code", el("input", { name: "starter_code", required: true, minlength: 6, maxlength: 64, autocomplete: "off", autocapitalize: "characters", "data-field": "starter_code" })),
    error,
    el("div", { class: "wide actions" }, el("button", { type: "submit" }, "Pair box"),
      boxes.length ? el("button", { type: "button", class: "secondary", onclick: next }, "Skip: keep the paired box") : null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const paired = await post(`${base}/boxes`, { serial: String(data.get("serial")).trim(), starter_code: String(data.get("starter_code")).trim() });
      frame(container, "pair", site.id, "Box paired",
        el("p", { class: "note", id: "paired", role: "status" }, `Box ${paired.box.serial} now belongs to ${site.name}.`),
        el("details", { class: "card" }, el("summary", {}, "Box token (only for boxes that fetch their schedule themselves)"),
          el("p", { class: "small" }, "Enter it on the box's local set-up page if your installer asks for it. It is shown only this once."),
          el("code", { id: "box-token" }, paired.token)),
        el("div", { class: "actions" }, el("button", { type: "button", id: "to-equipment", onclick: next }, "Continue: your equipment")));
    } catch (exc) {
      if (exc.status === 409) {
        error.hidden = false;
        error.textContent = "Unknown serial number, or a wrong or used starter code. Check the label and try again.";
      } else showApiError(form, error, exc);
    }
  });
  frame(container, "pair", site.id, `Pair the box of ${site.name}`,
    boxes.length ? el("p", { class: "note" }, `Paired already: ${boxes.map((b) => b.serial).join(", ")}. Pair another box or skip.`) : null,
    form);
}

// -- step 3: the equipment ----------------------------------------------------------------------
function section(id, title, present, body, onToggle) {
  const toggle = el("input", { type: "checkbox", name: `${id}-present`, checked: present, id: `${id}-present` });
  const content = el("div", { class: "row", hidden: !present }, body);
  toggle.addEventListener("change", () => {
    content.hidden = !toggle.checked;
    onToggle?.(toggle.checked);
  });
  return el("fieldset", { class: "wide", "data-section": id }, el("legend", {}, el("label", { class: "inline" }, toggle, title)), content);
}

function directionSelect(azimuth) {
  const options = DIRECTIONS.some(([v]) => Number(v) === azimuth) ? DIRECTIONS : [...DIRECTIONS, [String(azimuth), `${azimuth}°`]];
  return el("label", {}, "Facing", el("select", { name: "pv.azimuth_deg", "data-field": "pv.azimuth_deg" },
    options.map(([v, t]) => el("option", { value: v, selected: Number(v) === azimuth }, t))));
}

function wallboxFields(wb, i) {
  const p = `wallboxes.${i}`;
  return el("div", { class: "device card row", "data-wallbox": i },
    el("label", {}, "Name", el("input", { name: `${p}.name`, value: wb.name, pattern: "[a-z0-9_]{1,32}", required: true, "data-field": `${p}.name` })),
    num(`${p}.max_current_a`, "Max current [A]", wb.max_current_a, { min: 6, max: 80 }),
    el("label", {}, "Phases", el("select", { name: `${p}.phases`, "data-field": `${p}.phases` },
      [1, 3].map((n) => el("option", { value: n, selected: wb.phases === n }, String(n))))),
    num(`${p}.car_capacity_kwh`, "Car battery [kWh]", wb.car_capacity_kwh, { min: 1, max: 200 }));
}

function heatPumpFields(hp, i) {
  const p = `heat_pumps.${i}`;
  return el("div", { class: "device card row", "data-heatpump": i },
    el("label", {}, "Name", el("input", { name: `${p}.name`, value: hp.name, pattern: "[a-z0-9_]{1,32}", required: true, "data-field": `${p}.name` })),
    num(`${p}.max_kw`, "Electric power [kW]", hp.max_kw, { min: 0.1, max: 50 }),
    num(`${p}.comfort_min_c`, "Comfort from [°C]", hp.comfort_min_c, { min: 5, max: 70 }),
    num(`${p}.comfort_max_c`, "to [°C]", hp.comfort_max_c, { min: 5, max: 70 }));
}

/** A list of devices (wallboxes, heat pumps) with add and remove buttons. */
function deviceList(kind, items, limit, fields, blank) {
  const list = el("div", { class: "devices wide", "data-list": kind });
  const draw = () => {
    list.replaceChildren(...items.map((item, i) => {
      const node = fields(item, i);
      node.append(el("button", { type: "button", class: "secondary remove", onclick: () => { sync(); items.splice(i, 1); draw(); } }, "Remove"));
      return node;
    }));
    if (items.length < limit) list.append(el("button", { type: "button", class: "secondary", id: `add-${kind}`, onclick: () => { sync(); items.push(blank(items.length)); draw(); } }, kind === "wallbox" ? "Add an EV charger" : "Add a heat pump"));
  };
  // Keep what was typed before the list is redrawn.
  const sync = () => {
    list.querySelectorAll("[data-field]").forEach((input) => {
      const [, i, key] = input.dataset.field.split(".");
      const item = items[Number(i)];
      if (item) item[key] = input.type === "number" || input.tagName === "SELECT" ? Number(input.value) : input.value;
    });
  };
  draw();
  return list;
}

function equipmentBody(form, eq, lists) {
  const value = (name) => form.querySelector(`[name="${name}"]`).value;
  const number = (name) => (value(name) === "" ? null : Number(value(name)));
  const present = (id) => form.querySelector(`#${id}-present`).checked;
  // Each device keeps the fields the form does not show (e.g. phase switching) from its item.
  const devices = (prefix, keys) => lists[prefix].map((original, i) => {
    const item = { ...original };
    for (const key of keys) {
      const raw = value(`${prefix}.${i}.${key}`);
      item[key] = key === "name" ? raw.trim() : Number(raw);
    }
    return item;
  });
  return {
    ...eq,
    latitude: number("latitude"),
    longitude: number("longitude"),
    pv: present("pv") ? { ...(eq.pv || {}), peak_kw: number("pv.peak_kw"), tilt_deg: number("pv.tilt_deg"), azimuth_deg: number("pv.azimuth_deg") } : null,
    battery: present("battery") ? { ...(eq.battery || {}), capacity_kwh: number("battery.capacity_kwh"), charge_kw: number("battery.charge_kw"), discharge_kw: number("battery.discharge_kw"), reserve_soc: (number("battery.reserve_soc") ?? 0) / 100 } : null,
    wallboxes: devices("wallboxes", ["name", "max_current_a", "phases", "car_capacity_kwh"]),
    heat_pumps: devices("heat_pumps", ["name", "max_kw", "comfort_min_c", "comfort_max_c"]),
    grid: { ...eq.grid, import_limit_kw: number("grid.import_limit_kw"), export_limit_kw: number("grid.export_limit_kw"), feed_in_cap_kw: number("grid.feed_in_cap_kw"), negative_price_rule: value("grid.negative_price_rule") },
    annual_consumption_kwh: number("annual_consumption_kwh"),
  };
}

export async function renderEquipment(container, site, go) {
  const base = siteBase(site.id);
  const stored = await get(`${base}/equipment`);
  const eq = stored.equipment;
  const typed = JSON.parse(sessionStorage.getItem(LOCATION + site.id) || "null");
  const where = stored.source === "site" || !typed ? eq : { ...eq, ...typed };
  const pv = eq.pv || { peak_kw: 8, tilt_deg: 35, azimuth_deg: 180 };
  const bat = eq.battery || { capacity_kwh: 10, charge_kw: 5, discharge_kw: 5, reserve_soc: 0 };
  const wallboxes = eq.wallboxes.map((w) => ({ ...w }));
  const heatPumps = eq.heat_pumps.map((h) => ({ ...h }));
  const error = errorBox();
  const form = el("form", { class: "card form-grid", id: "equipment-form" },
    el("fieldset", { class: "wide" }, el("legend", {}, "Location"),
      el("div", { class: "row" },
        num("latitude", "Latitude [° north]", where.latitude, { min: -90, max: 90, required: true }),
        num("longitude", "Longitude [° east]", where.longitude, { min: -180, max: 180, required: true }))),
    section("pv", "Solar panels (PV)", eq.pv !== null, [
      num("pv.peak_kw", "Peak power [kWp]", pv.peak_kw, { min: 0.1, max: 1000 }),
      num("pv.tilt_deg", "Tilt [°]", pv.tilt_deg, { min: 0, max: 90 }),
      directionSelect(pv.azimuth_deg)]),
    section("battery", "Home battery", eq.battery !== null, [
      num("battery.capacity_kwh", "Usable capacity [kWh]", bat.capacity_kwh, { min: 0.1, max: 1000 }),
      num("battery.charge_kw", "Charge power [kW]", bat.charge_kw, { min: 0, max: 500 }),
      num("battery.discharge_kw", "Discharge power [kW]", bat.discharge_kw, { min: 0, max: 500 }),
      num("battery.reserve_soc", "Backup reserve [%]", Math.round((bat.reserve_soc || 0) * 100), { min: 0, max: 100 })]),
    el("fieldset", { class: "wide" }, el("legend", {}, "EV chargers"), deviceList("wallbox", wallboxes, 4, wallboxFields, (n) => ({ name: n ? `ev${n + 1}` : "ev", max_current_a: 16, phases: 3, car_capacity_kwh: 60 }))),
    el("fieldset", { class: "wide" }, el("legend", {}, "Heat pumps"), deviceList("heatpump", heatPumps, 2, heatPumpFields, (n) => ({ name: n ? `hp${n + 1}` : "hp", max_kw: 3, comfort_min_c: 20, comfort_max_c: 23 }))),
    el("fieldset", { class: "wide" }, el("legend", {}, "Grid connection"),
      el("div", { class: "row" },
        num("grid.import_limit_kw", "Import limit [kW]", eq.grid.import_limit_kw, { min: 0, max: 1000 }),
        num("grid.export_limit_kw", "Export limit [kW]", eq.grid.export_limit_kw, { min: 0, max: 1000 }),
        num("grid.feed_in_cap_kw", "Feed-in cap [kW] (empty: none)", eq.grid.feed_in_cap_kw, { min: 0, max: 1000 }),
        el("label", { title: "Plants since 2025 get no feed-in payment while the spot price is negative (EEG §51)" }, "Feed-in paid at negative prices", el("select", { name: "grid.negative_price_rule", "data-field": "grid.negative_price_rule" },
          [["no_payment_at_negative_spot", "no"], ["always_paid", "yes"]].map(([v, t]) => el("option", { value: v, selected: v === eq.grid.negative_price_rule }, t)))),
        num("annual_consumption_kwh", "Household use [kWh/year]", eq.annual_consumption_kwh, { min: 0, max: 100000 }))),
    error,
    el("div", { class: "wide actions" }, el("button", { type: "submit" }, "Save equipment and continue")));
  form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await put(`${base}/equipment`, equipmentBody(form, eq, { wallboxes, heat_pumps: heatPumps }));
      sessionStorage.removeItem(LOCATION + site.id);
      go(`#/site/${encodeURIComponent(site.id)}/setup/mode`);
    } catch (exc) {
      showApiError(form, error, exc);
    }
  });
  frame(container, "equipment", site.id, `Equipment of ${site.name}`,
    el("p", { class: "muted small" }, "The optimizer plans with these numbers. The installer's protocol or the devices' labels have them; you can change them later."),
    form);
}

// -- step 4: the charging mode ------------------------------------------------------------------
function modeForm(base, wb, current) {
  const form = el("form", { class: "card", "data-wallbox": wb.name },
    el("fieldset", { class: "modes" }, el("legend", {}, `EV charger ${wb.name}`),
      MODES.map(([value, title, text]) => el("label", { class: "mode" },
        el("input", { type: "radio", name: "mode", value, checked: value === current }),
        el("span", {}, el("strong", {}, title), el("span", { class: "muted small" }, text))))));
  return form;
}

export async function renderMode(container, site, go) {
  const base = siteBase(site.id);
  const [equipment, prefs] = await Promise.all([get(`${base}/equipment`), get(`${base}/wallboxes`)]);
  const modes = Object.fromEntries(prefs.map((p) => [p.name, p]));
  const forms = equipment.equipment.wallboxes.map((wb) => modeForm(base, wb, modes[wb.name]?.mode || "smart"));
  const error = errorBox();
  const finish = el("button", { type: "button", id: "finish" }, "Finish: start optimizing");
  finish.addEventListener("click", async () => {
    try {
      for (const form of forms) {
        const name = form.dataset.wallbox;
        const previous = modes[name] || {};
        await put(`${base}/wallboxes/${encodeURIComponent(name)}`, {
          mode: new FormData(form).get("mode"),
          departure: previous.departure ?? null,
          target_kwh: previous.target_kwh ?? null,
        });
      }
      go(`#/site/${encodeURIComponent(site.id)}/live`);
    } catch (exc) {
      error.hidden = false;
      error.textContent = `Not saved: ${exc.message}`;
    }
  });
  frame(container, "mode", site.id, "How should your car charge?",
    forms.length ? forms : el("p", { class: "note" }, "No EV charger in the equipment: nothing to choose here."),
    el("p", { class: "muted small" }, "Departure times and the energy wanted are set in Settings whenever the car's plans change."),
    error, el("div", { class: "actions" }, finish));
}
