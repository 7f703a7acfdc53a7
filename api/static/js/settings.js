// Settings: charging per wallbox, comfort band per heat pump, supporters, factory service,
// data export and account deletion. Only owners get the forms that change things (the API
// refuses the others anyway).
import { blob, del, get, put, signOut } from "./api.js";
import { dayTime, el, utcToWall, wallToUtc } from "./format.js";
import { go } from "./main.js";

const MODES = [
  ["smart", "smart: cheapest hours before departure"],
  ["now", "now: full power at once"],
  ["solar", "solar: solar surplus only"],
  ["min_solar", "min+solar: minimum current plus solar"],
  ["after_battery", "after battery: once the battery is full"],
  ["off", "off"],
];

function saved(form, text) {
  let note = form.querySelector(".saved");
  if (!note) form.append((note = el("span", { class: "saved", role: "status" })));
  note.textContent = text;
}

async function submit(form, action) {
  try {
    await action();
  } catch (exc) {
    saved(form, `Not saved: ${exc.message}`);
    throw exc;
  }
}

const DAYS = [["mon", "Mon"], ["tue", "Tue"], ["wed", "Wed"], ["thu", "Thu"], ["fri", "Fri"], ["sat", "Sat"], ["sun", "Sun"]];

/** A target as value + unit (% of the car's battery or kWh); empty: a full battery. */
function targetInputs(prefix, goal, disabled) {
  const soc = goal?.target_soc_pct != null;
  const value = soc ? goal.target_soc_pct : goal?.target_kwh ?? "";
  return [
    el("input", { name: `${prefix}target`, type: "number", min: "0", max: "200", step: "any", placeholder: "full", disabled, value, "aria-label": "target" }),
    el("select", { name: `${prefix}unit`, disabled, "aria-label": "unit" },
      el("option", { value: "pct", selected: soc }, "%"), el("option", { value: "kwh", selected: !soc }, "kWh")),
  ];
}

function readTarget(data, prefix) {
  const raw = data.get(`${prefix}target`);
  if (raw === "" || raw == null) return { target_kwh: null, target_soc_pct: null };
  const value = Number(raw);
  return data.get(`${prefix}unit`) === "pct" ? { target_kwh: null, target_soc_pct: value } : { target_kwh: value, target_soc_pct: null };
}

function wallboxForm(base, site, wb, owner) {
  const tz = site.timezone;
  const disabled = !owner;
  const weekly = wb.weekly || {};
  const rows = DAYS.flatMap(([day, label]) => [
    el("span", {}, label),
    el("input", { name: `time-${day}`, type: "time", disabled, value: weekly[day]?.time ?? "", "aria-label": `${label} departure` }),
    el("span", { class: "target" }, ...targetInputs(`${day}-`, weekly[day], disabled)),
  ]);
  const form = el("form", { class: "card", "data-wallbox": wb.name },
    el("strong", {}, `EV charger ${wb.name}`),
    el("label", {}, "Charging mode",
      el("select", { name: "mode", disabled }, MODES.map(([v, t]) => el("option", { value: v, selected: v === wb.mode }, t)))),
    el("fieldset", { class: "weekly-plan" },
      el("legend", {}, `Every week: departure (${tz}) and charge wanted then`),
      el("div", { class: "weekly" }, el("span", { class: "muted small" }, "day"), el("span", { class: "muted small" }, "leaves at"), el("span", { class: "muted small" }, "charge wanted (empty: full)"), ...rows)),
    el("fieldset", { class: "one-off" },
      el("legend", {}, "Next trip only (overrides the weekly plan until it has passed)"),
      el("label", {}, `Departure (${tz})`,
        el("input", { name: "departure", type: "datetime-local", disabled, value: wb.departure ? utcToWall(wb.departure, tz) : "" })),
      el("label", {}, "Charge wanted then", el("span", { class: "target" }, ...targetInputs("", wb, disabled)))),
    owner ? el("button", { type: "submit" }, "Save") : null,
    wb.updated_at ? el("span", { class: "muted small" }, `changed ${dayTime(wb.updated_at, tz)}`) : null);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const plan = {};
    for (const [day] of DAYS) {
      const time = data.get(`time-${day}`);
      if (time) plan[day] = { time, ...readTarget(data, `${day}-`) };
    }
    const body = {
      mode: data.get("mode"),
      departure: data.get("departure") ? wallToUtc(data.get("departure"), tz) : null,
      ...readTarget(data, ""),
      weekly: plan,
    };
    submit(form, async () => {
      const stored = await put(`${base}/wallboxes/${encodeURIComponent(wb.name)}`, body);
      const days = Object.keys(stored.weekly || {}).length;
      saved(form, `Saved: mode ${stored.mode}${days ? `, ${days} weekly departure${days === 1 ? "" : "s"}` : ""}.`);
    });
  });
  return form;
}

function heatpumpForm(base, site, hp, owner) {
  const form = el("form", { class: "card", "data-heatpump": hp.name },
    el("strong", {}, `Heat pump ${hp.name}`),
    el("label", {}, "Hot-water store from [°C]", el("input", { name: "comfort_min_c", type: "number", step: "0.5", min: "5", max: "70", required: true, disabled: !owner, value: hp.comfort_min_c ?? 45 })),
    el("label", {}, "to [°C]", el("input", { name: "comfort_max_c", type: "number", step: "0.5", min: "5", max: "70", required: true, disabled: !owner, value: hp.comfort_max_c ?? 55 })),
    owner ? el("button", { type: "submit" }, "Save") : null);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { comfort_min_c: Number(data.get("comfort_min_c")), comfort_max_c: Number(data.get("comfort_max_c")) };
    submit(form, async () => {
      const stored = await put(`${base}/heatpumps/${encodeURIComponent(hp.name)}`, body);
      saved(form, `Saved: hot-water store ${stored.comfort_min_c}–${stored.comfort_max_c} °C.`);
    });
  });
  return form;
}

function grantsSection(base, site, grants, rerender) {
  const list = el("ul", { class: "grants", id: "grants" },
    grants.length ? grants.map((g) => el("li", { "data-supporter": g.supporter_id },
      el("code", {}, g.supporter_id),
      el("span", { class: "muted small" }, `since ${dayTime(g.created_at, site.timezone)}`),
      el("button", { type: "button", class: "secondary", onclick: async () => {
        await del(`${base}/grants/${encodeURIComponent(g.supporter_id)}`);
        rerender();
      } }, "Revoke"))) : el("li", { class: "muted" }, "No supporters have access."));
  const form = el("form", { id: "grant-form" },
    el("label", {}, "Supporter's user ID", el("input", { name: "supporter", required: true, size: 36, placeholder: "usr_…" })),
    el("button", { type: "submit" }, "Grant read access"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = new FormData(form).get("supporter").trim();
    submit(form, async () => {
      await put(`${base}/grants/${encodeURIComponent(id)}`);
      rerender();
    });
  });
  return el("section", { class: "card" }, el("h2", {}, "Supporters"),
    el("p", { class: "muted small" }, "A supporter (installer, technician) sees this site's live view, plan and highlights, but changes nothing. Ask them for the user ID shown on their list of sites."),
    list, form);
}

function factorySection(base, site) {
  const box = el("input", { type: "checkbox", id: "factory-service", checked: site.factory_service });
  const note = el("span", { class: "saved", role: "status" });
  box.addEventListener("change", async () => {
    const stored = await put(`${base}/factory-service`, { enabled: box.checked });
    note.textContent = stored.factory_service ? "On: the factory service may access this site." : "Off.";
  });
  return el("section", { class: "card" }, el("h2", {}, "Factory service"),
    el("label", { style: "display:flex;gap:.5rem;align-items:center" }, box, "Let the manufacturer's service team access this site"), note);
}

function exportSection(base, site) {
  const button = el("button", { type: "button", class: "secondary", id: "export" }, "Download all data of this site (JSON)");
  button.addEventListener("click", async () => {
    const url = URL.createObjectURL(await blob(`${base}/export`));
    const a = el("a", { href: url, download: `${site.id}-export.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
  return el("section", { class: "card" }, el("h2", {}, "Your data"), button);
}

function accountSection(me) {
  const button = el("button", { type: "button", class: "danger", id: "delete-account" }, "Delete my account and all its data");
  button.addEventListener("click", async () => {
    if (!window.confirm("Delete your account, your sites and all their data for good?")) return;
    await del("/v1/app/me");
    signOut();
    go("#/signin");
  });
  return el("section", { class: "card" }, el("h2", {}, "Account"),
    el("p", {}, `Signed in as ${me.email}. Your user ID (give it to an owner to be granted access): `, el("code", { id: "my-user-id" }, me.id)),
    button);
}

export async function renderSettings(container, site) {
  const base = `/v1/app/sites/${encodeURIComponent(site.id)}`;
  const owner = site.your_role === "owner";
  async function render() {
    const [me, wallboxes, heatpumps, grants] = await Promise.all([
      get("/v1/app/me"),
      get(`${base}/wallboxes`),
      get(`${base}/heatpumps`),
      owner ? get(`${base}/grants`) : Promise.resolve(null),
    ]);
    const wbs = wallboxes.length || !owner ? wallboxes : [{ name: "ev", mode: "smart" }];
    const hps = heatpumps.length || !owner ? heatpumps : [{ name: "hp", comfort_min_c: 45, comfort_max_c: 55 }];
    container.replaceChildren(...[
      el("h1", {}, `${site.name}: settings`),
      owner ? null : el("p", { class: "note" }, `You are a ${site.your_role.replace("_", " ")} of this site: you see its settings; only the owner changes them.`),
      el("div", { class: "settings" },
        el("section", { class: "card" }, el("h2", {}, "EV charging"),
          wbs.length ? wbs.map((w) => wallboxForm(base, site, w, owner)) : el("p", { class: "muted" }, "No EV charger set up.")),
        el("section", { class: "card" }, el("h2", {}, "Heat pump: hot-water store temperature"),
          el("p", { class: "muted small" }, "The plan keeps the store (tank) between these temperatures, heating it more when power is cheap or the sun shines."),
          hps.length ? hps.map((h) => heatpumpForm(base, site, h, owner)) : el("p", { class: "muted" }, "No heat pump set up.")),
        owner ? grantsSection(base, site, grants, render) : null,
        owner ? factorySection(base, site) : null,
        owner ? exportSection(base, site) : null,
        accountSection(me)),
    ].filter(Boolean));
  }
  await render();
  return () => {};
}
