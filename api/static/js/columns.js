// Column names of plan rows (the store's "device-quantity" and the optimizer's
// "device_quantity" spellings) and the devices a plan has.

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
