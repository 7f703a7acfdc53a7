// The bell in the header, the notifications page (feed + settings), Web Push, and the monthly
// report download. Everything goes through the /v1/app routes with the user's token.
import { blob, get, put, request } from "./api.js";
import { el } from "./format.js";

const KINDS = {
  ev_charged: "Car charged to its target",
  ev_target_at_risk: "Car target at risk before departure",
  box_offline: "Box offline or in fallback",
  box_back: "Box back online",
  grid_limit_start: "Grid operator limit starts (§14a)",
  grid_limit_end: "Grid operator limit ends",
  negative_prices_tomorrow: "Negative prices tomorrow",
  monthly_report_ready: "Monthly report ready",
};
const CHANNELS = { feed: "App", email: "Mail", webhook: "Webhook", push: "Push" };
const POLL_MS = 60_000;

let timer = null;

/** Show the bell (signed in) with the unread count, refreshed every minute. */
export function startBell(bell) {
  stopBell(bell);
  bell.hidden = false;
  const update = async () => {
    try {
      const feed = await get("/v1/app/me/notifications?limit=1");
      const badge = bell.querySelector(".count");
      badge.textContent = feed.unread > 99 ? "99+" : String(feed.unread);
      badge.hidden = feed.unread === 0;
      bell.setAttribute("aria-label", `Notifications, ${feed.unread} unread`);
    } catch {
      // accounts without a feed (traders) or a network blip: keep the bell quiet
    }
  };
  update();
  timer = setInterval(update, POLL_MS);
}

export function stopBell(bell) {
  if (timer) clearInterval(timer);
  timer = null;
  bell.hidden = true;
}

function when(iso) {
  return new Intl.DateTimeFormat("en-GB", {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  }).format(new Date(iso));
}

/** The notifications page: the feed, then the per-event settings. */
export async function renderNotifications(container, bell) {
  const [feed, settings] = await Promise.all([
    get("/v1/app/me/notifications?limit=100"),
    get("/v1/app/me/notification-settings"),
  ]);
  const items = feed.items.map((i) =>
    el("li", { class: `card feed-item${i.read ? "" : " unread"}`, "data-kind": i.kind },
      el("strong", {}, i.title), el("p", {}, i.body), el("span", { class: "muted small" }, when(i.at))),
  );
  const readAll = el("button", { type: "button", class: "secondary", id: "read-all", hidden: feed.unread === 0 }, "Mark all read");
  readAll.addEventListener("click", async () => {
    await request("POST", "/v1/app/me/notifications/read", {});
    for (const li of container.querySelectorAll(".feed-item.unread")) li.classList.remove("unread");
    readAll.hidden = true;
    startBell(bell);
  });
  container.replaceChildren(
    el("h1", {}, "Notifications"),
    readAll,
    items.length
      ? el("ul", { class: "feed", id: "feed" }, items)
      : el("p", { class: "note", id: "feed-empty" }, "Nothing yet. Messages about your car, your box and prices appear here."),
    settingsForm(settings),
    pushControls(),
  );
}

function settingsForm(settings) {
  const saved = el("span", { class: "saved", role: "status" });
  const error = el("p", { class: "error", hidden: true, role: "alert" });
  const rows = Object.entries(KINDS).map(([kind, label]) =>
    el("tr", {},
      el("td", {}, label),
      ...Object.keys(CHANNELS).map((channel) =>
        el("td", {}, el("input", {
          type: "checkbox", name: `${kind}.${channel}`, "aria-label": `${label}: ${CHANNELS[channel]}`,
          checked: (settings.channels[kind] || []).includes(channel),
        })))),
  );
  const url = el("input", { name: "webhook_url", type: "url", placeholder: "your ntfy topic, Gotify or Home Assistant URL", value: settings.webhook?.url || "" });
  const format = el("select", { name: "webhook_format" },
    el("option", { value: "json", selected: settings.webhook?.format !== "ntfy" }, "JSON (Gotify, Home Assistant)"),
    el("option", { value: "ntfy", selected: settings.webhook?.format === "ntfy" }, "ntfy (plain text)"));
  const minutes = el("input", { name: "offline_minutes", type: "number", min: 5, max: 1440, value: settings.offline_minutes });
  const form = el("form", { class: "card notify-settings", id: "notify-settings" },
    el("h2", {}, "What to tell you, and where"),
    el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Event"), ...Object.values(CHANNELS).map((c) => el("th", {}, c)))),
      el("tbody", {}, rows))),
    el("label", {}, "Webhook URL (ntfy, Gotify, Home Assistant)", url),
    el("label", {}, "Webhook format", format),
    el("label", {}, "Tell me when the box is offline for (minutes)", minutes),
    el("button", { type: "submit" }, "Save"), saved, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const channels = {};
    for (const kind of Object.keys(KINDS)) {
      channels[kind] = Object.keys(CHANNELS).filter((c) => form.elements[`${kind}.${c}`].checked);
    }
    const body = { channels, offline_minutes: Number(minutes.value) };
    if (url.value) body.webhook = { url: url.value, format: format.value };
    try {
      await put("/v1/app/me/notification-settings", body);
      error.hidden = true;
      saved.textContent = "Saved.";
    } catch (exc) {
      saved.textContent = "";
      error.hidden = false;
      error.textContent = exc.message;
    }
  });
  return form;
}

function pushControls() {
  const status = el("p", { class: "muted small", id: "push-status" });
  const button = el("button", { type: "button", class: "secondary", id: "push-enable" }, "Send push messages to this browser");
  const box = el("div", { class: "card" }, el("h2", {}, "Push messages"), button, status);
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    button.hidden = true;
    status.textContent = "This browser does not support push messages; use e-mail or a webhook.";
    return box;
  }
  button.addEventListener("click", async () => {
    try {
      const { application_server_key: key } = await get("/v1/app/push/key");
      const registration = await navigator.serviceWorker.register("sw.js");
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: key,
      });
      await request("POST", "/v1/app/me/push-subscriptions", subscription.toJSON());
      status.textContent = "This browser will show push messages.";
    } catch (exc) {
      status.textContent = `Push messages are not available: ${exc.message}`;
    }
  });
  return box;
}

/** A "monthly report (PDF)" control for the highlights page; ``today`` is YYYY-MM-DD (site). */
export function reportDownload(site, today) {
  const [y, m] = today.split("-").map(Number);
  const value = m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, "0")}`;
  const month = el("input", { type: "month", name: "report-month", value, "aria-label": "Report month" });
  const link = el("button", { type: "button", class: "secondary", id: "report-download" }, "Download the monthly report (PDF)");
  const error = el("span", { class: "error small", hidden: true, role: "alert" });
  link.addEventListener("click", async () => {
    error.hidden = true;
    try {
      const pdf = await blob(`/v1/app/sites/${encodeURIComponent(site.id)}/reports/${month.value}.pdf`);
      const url = URL.createObjectURL(pdf);
      const a = el("a", { href: url, download: `energy-report-${month.value}.pdf` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (exc) {
      error.hidden = false;
      error.textContent = exc.message;
    }
  });
  return el("div", { class: "report card", id: "monthly-report" }, el("h2", {}, "Monthly report"), month, link, error);
}
