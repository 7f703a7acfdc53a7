// Energy highlights and CO2 impact per local day/week/month/year, and the shareable card.
import { ApiError, blob, get } from "./api.js";
import { destroyCharts, timeChart } from "./charts.js";
import { addDays, day, el, eur, kgCo2, kwh, localDate, pct } from "./format.js";
import { reportDownload } from "./notifications.js";

const RANGE_DAYS = { day: 14, week: 84, month: 365, year: 366 };
const LABELS = { day: "Day", week: "Week", month: "Month", year: "Year" };
const AXIS_FORMAT = { day: { day: "numeric", month: "short" }, week: { day: "numeric", month: "short" }, month: { month: "short", year: "numeric" }, year: { year: "numeric" } };
const HALF_PERIOD_S = { day: 43200, week: 302400, month: 1314000, year: 15768000 };

async function serverToday(base, tz) {
  // The API's clock decides what "today" is (a demo may run on simulated time).
  try {
    return localDate((await get(`${base}/live`)).as_of, tz);
  } catch {
    return localDate(new Date().toISOString(), tz);
  }
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
    destroyCharts();
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
    const x = periods.map((p) => Date.parse(p.start) / 1000);
    const col = (k) => periods.map((p) => p[k] ?? null);
    const charts = el("div", { class: "charts" });
    body.replaceChildren(charts);
    timeChart(charts, {
      title: `Energy per ${period} [kWh]`, x: x.map((t) => t + HALF_PERIOD_S[period]), tz, pad: HALF_PERIOD_S[period], format: AXIS_FORMAT[period],
      axes: { kwh: { unit: "kWh", zero: true } },
      series: [
        { label: "solar", values: col("pv_kwh"), color: "#e5a800", unit: "kWh", bars: true, barSize: 0.8, digits: 1 },
        { label: "consumed", values: col("consumption_kwh"), color: "#2f6fb3", unit: "kWh", bars: true, barSize: 0.4, digits: 1 },
        { label: "import", values: col("import_kwh"), color: "#b3541e", unit: "kWh", points: true, digits: 1 },
        { label: "export", values: col("export_kwh"), color: "#0f7b55", unit: "kWh", points: true, digits: 1 },
      ],
    });
    timeChart(charts, {
      title: `CO₂ per ${period} [kg]`, x: x.map((t) => t + HALF_PERIOD_S[period]), tz, height: 180, pad: HALF_PERIOD_S[period], format: AXIS_FORMAT[period],
      axes: { kg: { unit: "kg CO₂", zero: true } },
      series: [
        { label: "avoided", values: col("co2_avoided_total_kg"), color: "#0f7b55", unit: "kg", bars: true, barSize: 0.7, digits: 1 },
        { label: "caused", values: col("co2_caused_kg"), color: "#5e6e67", unit: "kg", points: true, digits: 1 },
      ],
    });
    const rows = periods.slice().reverse().map((p) =>
      el("tr", {},
        el("td", {}, periodLabel(p, period, tz), p.complete ? "" : " (so far)"),
        el("td", {}, kwh(p.pv_kwh)), el("td", {}, kwh(p.consumption_kwh)),
        el("td", {}, kwh(p.import_kwh)), el("td", {}, kwh(p.export_kwh)),
        el("td", {}, pct(p.autarky)), el("td", {}, eur(p.cost_eur)),
        el("td", {}, eur(p.savings_vs_no_pv_eur)), el("td", {}, kgCo2(p.co2_avoided_total_kg))));
    body.append(
      el("h2", {}, "Numbers"),
      el("div", { class: "table-wrap card" }, el("table", { id: "highlights-table" },
        el("thead", {}, el("tr", {}, ["", "solar", "consumed", "import", "export", "self-sufficient", "bill", "saved vs no solar", "CO₂ avoided"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows))),
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
    destroyCharts();
    if (cardUrl) URL.revokeObjectURL(cardUrl);
  };
}
