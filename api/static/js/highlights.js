// Energy highlights and CO2 impact per local day/week/month/year, and the shareable card.
import { ApiError, blob, get } from "./api.js";
import { barChart, destroyBarCharts } from "./barchart.js";
import { addDays, day, el, eur, kgCo2, kwh, localDate, pct } from "./format.js";
import { reportDownload } from "./notifications.js";

const RANGE_DAYS = { day: 14, week: 84, month: 365, year: 366 };
const LABELS = { day: "Day", week: "Week", month: "Month", year: "Year" };
const COLORS = { pv: "#e5a800", pvSelf: "#f2cc4d", exportPv: "#3b9ad9", battery: "#1b8a5a", grid: "#7a4fbf", export: "#0f7b55", import: "#b3541e", caused: "#8a969a" };

async function serverToday(base, tz) {
  // The API's clock decides what "today" is (a demo may run on simulated time).
  try {
    return localDate((await get(`${base}/live`)).as_of, tz);
  } catch {
    return localDate(new Date().toISOString(), tz);
  }
}

/** The axis label: one per period, as short as the period allows (the year only where it changes). */
function shortLabel(p, period, tz, first) {
  const f = (opts) => new Intl.DateTimeFormat("en-GB", { timeZone: tz, ...opts }).format(new Date(p.start));
  if (period === "year") return f({ year: "numeric" });
  if (period === "month") {
    const m = f({ month: "short" });
    return m === "Jan" || p === first ? `${m} ${f({ year: "2-digit" })}` : m;
  }
  return f({ day: "numeric", month: "short" });
}

function periodLabel(p, period, tz) {
  if (period === "day") return day(p.start, tz);
  if (period === "month") return new Intl.DateTimeFormat("en-GB", { timeZone: tz, month: "short", year: "numeric" }).format(new Date(p.start));
  if (period === "year") return new Intl.DateTimeFormat("en-GB", { timeZone: tz, year: "numeric" }).format(new Date(p.start));
  return `week of ${day(p.start, tz)}`;
}

export async function renderHighlights(container, site) {
  const base = `/v1/app/sites/${encodeURIComponent(site.id)}`;
  const tz = site.timezone;
  const today = await serverToday(base, tz);
  const end = addDays(today, 1); // include today so far
  const buttons = el("div", { class: "periods", role: "group", "aria-label": "Period" });
  const body = el("div", { id: "highlights-body" });
  container.append(el("h1", {}, `${site.name}: energy highlights`), buttons, body, reportDownload(site, today));
  let cardUrl = null;

  async function show(period) {
    for (const b of buttons.children) b.setAttribute("aria-pressed", String(b.dataset.period === period));
    destroyBarCharts();
    if (cardUrl) URL.revokeObjectURL(cardUrl);
    body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    const query = `period=${period}&start=${addDays(end, -RANGE_DAYS[period])}&end=${end}`;
    let data;
    try {
      data = await get(`${base}/highlights?${query}`);
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status === 401 || exc.status === 404) throw exc;
      const text = exc.code === "no_telemetry" ? "No telemetry in this range yet." : exc.message;
      body.replaceChildren(el("p", { class: "note", id: "no-highlights" }, text));
      return;
    }
    const periods = data.periods;
    const labels = periods.map((p) => shortLabel(p, period, tz, periods[0]));
    const long = periods.map((p) => periodLabel(p, period, tz) + (p.complete ? "" : " (so far)"));
    const col = (k) => periods.map((p) => p[k] ?? 0);
    const fromSolar = col("pv_to_load_kwh");
    const fromBattery = col("battery_to_load_kwh");
    const fromGrid = periods.map((p, i) => Math.max(0, (p.consumption_kwh ?? 0) - fromSolar[i] - fromBattery[i]));
    const exported = periods.map((p) => Math.min(p.export_kwh ?? 0, p.pv_kwh ?? 0));
    const selfUsed = periods.map((p, i) => Math.max(0, (p.pv_kwh ?? 0) - exported[i]));
    const totalLabel = `Total, ${periods.length} ${period}${periods.length === 1 ? "" : "s"}`;
    const charts = el("div", { class: "charts" });
    body.replaceChildren(charts);
    barChart(charts, {
      title: `Energy per ${period} [kWh]: used (left bar) by origin, solar (right bar) by use`,
      labels, long, unit: "kWh", totalLabel,
      groups: [
        { name: "used", stack: [
          { label: "used from solar", color: COLORS.pv, values: fromSolar },
          { label: "from battery", color: COLORS.battery, values: fromBattery },
          { label: "from grid", color: COLORS.grid, values: fromGrid },
        ] },
        { name: "solar", stack: [
          { label: "solar used here", color: COLORS.pvSelf, values: selfUsed },
          { label: "solar exported", color: COLORS.exportPv, values: exported },
        ] },
      ],
    });
    barChart(charts, {
      title: `Grid per ${period} [kWh]`, labels, long, unit: "kWh", totalLabel, height: 180,
      groups: [
        { name: "import", stack: [{ label: "import", color: COLORS.import, values: col("import_kwh") }] },
        { name: "export", stack: [{ label: "export", color: COLORS.exportPv, values: col("export_kwh") }] },
      ],
    });
    barChart(charts, {
      title: `CO₂ per ${period} [kg]`, labels, long, unit: "kg", totalLabel, height: 180,
      groups: [
        { name: "avoided", stack: [{ label: "avoided", color: COLORS.export, values: col("co2_avoided_total_kg") }] },
        { name: "caused", stack: [{ label: "caused", color: COLORS.caused, values: col("co2_caused_kg") }] },
      ],
    });
    const heads = ["", "solar", "consumed", "import", "export", "self-sufficient", "bill", "saved vs no solar", "CO₂ avoided"];
    const rows = periods.slice().reverse().map((p) => {
      const cells = [periodLabel(p, period, tz) + (p.complete ? "" : " (so far)"),
        kwh(p.pv_kwh), kwh(p.consumption_kwh), kwh(p.import_kwh), kwh(p.export_kwh),
        pct(p.autarky), eur(p.cost_eur), eur(p.savings_vs_no_pv_eur), kgCo2(p.co2_avoided_total_kg)];
      return el("tr", {}, cells.map((c, i) => el("td", { "data-label": heads[i] }, c)));
    });
    body.append(
      el("h2", {}, "Numbers"),
      el("div", { class: "table-wrap card" }, el("table", { id: "highlights-table", class: "cards-on-phone" },
        el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))),
        el("tbody", {}, rows))),
      el("p", { class: "muted small" }, "Bill: what you pay for imports minus what exports earn; a negative bill means you earned money net."),
    );
    const img = el("img", { class: "share", id: "share-card", alt: `Impact card of the latest ${period}` });
    const link = el("a", { download: `impact-${period}.png`, href: "#" }, "Download the card");
    body.append(el("h2", {}, `Share your impact (latest ${period})`), img, el("p", {}, link));
    try {
      cardUrl = URL.createObjectURL(await blob(`${base}/highlights/card.png?${query}`));
      img.src = cardUrl;
      link.href = cardUrl;
    } catch (exc) {
      img.replaceWith(el("p", { class: "note" }, `No card: ${exc.message}`));
    }
  }

  for (const period of Object.keys(RANGE_DAYS)) {
    buttons.append(el("button", { type: "button", "data-period": period, "aria-pressed": "false", onclick: () => show(period) }, LABELS[period]));
  }
  await show("day");
  return () => {
    destroyBarCharts();
    if (cardUrl) URL.revokeObjectURL(cardUrl);
  };
}
