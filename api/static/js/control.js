// Control status tile: whether the service controls the site's box, and why the plan does what it does.
import { get } from "./api.js";
import { clock, el } from "./format.js";

const REFRESH_MS = 5000;

function line(label, value) {
  return el("div", { class: "small" }, `${label}: `, el("span", {}, value));
}

function render(tile, s, tz) {
  const parts = [
    el("h3", {}, "Control"),
    el("div", { class: "value", "data-field": "state_text" }, s.state_text),
  ];
  if (s.link) parts.push(line("link", s.link === "modbus" ? "Modbus TCP (the service writes)" : "the box fetches its schedule"));
  parts.push(line("last contact", s.last_contact ? clock(s.last_contact, tz) : "–"));
  parts.push(line("last plan", s.last_plan_at ? clock(s.last_plan_at, tz) : "no plan yet"));
  for (const r of (s.reasons || []).slice(0, 4)) parts.push(el("div", { class: "small reason" }, r.text));
  if (s.last_error) parts.push(el("div", { class: "small error", "data-field": "last_error" }, s.last_error));
  tile.dataset.state = s.state;
  tile.replaceChildren(...parts);
}

/** A tile that shows GET /v1/app/sites/{id}/status and refreshes itself; returns [tile, stop]. */
export function controlTile(site) {
  const tile = el("article", { class: "tile control", id: "control-status", "data-state": "" },
    el("h3", {}, "Control"), el("div", { class: "value" }, "…"));
  let timer = null;
  let stopped = false;
  const path = `/v1/app/sites/${encodeURIComponent(site.id)}/status`;
  async function tick() {
    try {
      render(tile, await get(path), site.timezone);
    } catch {
      // the live stream below reports access and network problems
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  }
  tick();
  return [tile, () => { stopped = true; clearTimeout(timer); }];
}
