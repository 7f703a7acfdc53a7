// Numbers with units and times in the site's local time zone.
const numbers = new Map();

export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  let f = numbers.get(digits);
  if (!f) {
    f = new Intl.NumberFormat("en-GB", {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    numbers.set(digits, f);
  }
  return f.format(Math.abs(value) < 0.5 * 10 ** -digits ? 0 : value);
}

const withUnit = (value, digits, unit) => (value == null ? "–" : `${num(value, digits)} ${unit}`);
export const kw = (v) => withUnit(v, 2, "kW");
export const kwh = (v) => withUnit(v, 1, "kWh");
export const eur = (v) => withUnit(v, 2, "EUR");
export const ctPerKwh = (v) => withUnit(v == null ? v : v * 100, 1, "ct/kWh");
export const kgCo2 = (v) => withUnit(v, 1, "kg CO₂");
export const degC = (v) => withUnit(v, 1, "°C");
export const pct = (v) => (v == null ? "–" : `${num(v * 100, 0)} %`);

export function age(seconds) {
  if (seconds == null) return "no data";
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function formatter(tz, options) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: tz, hourCycle: "h23", ...options });
}

export const clock = (iso, tz) =>
  formatter(tz, { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(iso));
export const hhmm = (iso, tz) =>
  formatter(tz, { weekday: "short", hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
export const dayTime = (iso, tz) =>
  formatter(tz, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(
    new Date(iso),
  );
export const day = (iso, tz) =>
  formatter(tz, { day: "numeric", month: "short", year: "numeric" }).format(new Date(iso));

function wallParts(ms, tz) {
  const parts = {};
  const f = formatter(tz, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  for (const p of f.formatToParts(new Date(ms))) parts[p.type] = p.value;
  return parts;
}

/** Offset of ``tz`` from UTC at instant ``ms`` [ms]. */
function offset(ms, tz) {
  const p = wallParts(ms, tz);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** "YYYY-MM-DDTHH:MM" read as wall time in ``tz`` -> ISO 8601 UTC. */
export function wallToUtc(value, tz) {
  const [d, t] = value.split("T");
  const [y, m, dd] = d.split("-").map(Number);
  const [hh, mm] = t.split(":").map(Number);
  const guess = Date.UTC(y, m - 1, dd, hh, mm);
  let ms = guess - offset(guess, tz);
  ms = guess - offset(ms, tz);
  return new Date(ms).toISOString();
}

/** ISO 8601 instant -> "YYYY-MM-DDTHH:MM" wall time in ``tz`` (for datetime-local inputs). */
export function utcToWall(iso, tz) {
  const p = wallParts(Date.parse(iso), tz);
  return `${p.year}-${p.month}-${p.day}T${p.hour % 24 === 0 ? "00" : p.hour}:${p.minute}`;
}

/** The local calendar date (YYYY-MM-DD) of an instant in ``tz``. */
export function localDate(iso, tz) {
  const p = wallParts(Date.parse(iso), tz);
  return `${p.year}-${p.month}-${p.day}`;
}

export function addDays(isoDate, days) {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Build an element: el("p", {class: "x"}, "text", child). Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
