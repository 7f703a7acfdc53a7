// The dashboard shell: hash routes, the site picker, the header tabs.
import { ApiError, get, session, signIn, signOut } from "./api.js";
import { el } from "./format.js";
import { renderHighlights } from "./highlights.js";
import { renderLive } from "./live.js";
import { confirmPage, forgotPage, resetPage, signUpPage, takeMailedLink, takeNotice } from "./onboarding.js";
import { renderNotifications, startBell, stopBell } from "./notifications.js";
import { renderPlan } from "./plan.js";
import { renderSettings } from "./settings.js";
import { renderAddSite, renderEquipment, renderMode, renderPair } from "./setup.js";

const view = document.getElementById("view");
const siteSelect = document.getElementById("site-select");
const tabs = document.getElementById("tabs");
const signOutButton = document.getElementById("sign-out");
const bell = document.getElementById("bell");
const PAGES = { live: renderLive, plan: renderPlan, highlights: renderHighlights, settings: renderSettings };
const ROLE_NAMES = { owner: "owner", supporter: "supporter", factory_service: "factory service" };
const SETUP = { pair: renderPair, equipment: renderEquipment, mode: renderMode };
// Pages for visitors without a session; the mailed-link pages work signed in or not.
const PUBLIC = { signup: signUpPage, forgot: forgotPage };
const MAILED = { "confirm-email": confirmPage, "reset-password": resetPage };

let cleanup = () => {};
let sites = [];

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

function shell(signedIn, site, tab) {
  signOutButton.hidden = !signedIn;
  if (signedIn && bell.hidden) startBell(bell);
  else if (!signedIn) stopBell(bell);
  siteSelect.hidden = !site || sites.length < 2;
  tabs.hidden = !site;
  if (site) {
    siteSelect.replaceChildren(
      ...sites.map((s) => el("option", { value: s.id, selected: s.id === site.id }, s.name)),
    );
    for (const a of tabs.querySelectorAll("a")) {
      a.href = `#/site/${encodeURIComponent(site.id)}/${a.dataset.tab}`;
      a.classList.toggle("active", a.dataset.tab === tab);
    }
  }
}

function signInPage(message) {
  shell(false);
  const notice = message ? null : takeNotice();
  const error = el("p", { class: "error", hidden: !message, role: "alert" }, message || "");
  const form = el(
    "form",
    { class: "signin card", id: "signin" },
    el("label", {}, "Email", el("input", { name: "email", type: "email", required: true, autocomplete: "username", value: notice?.email || "" })),
    el("label", {}, "Password", el("input", { name: "password", type: "password", required: true, autocomplete: "current-password" })),
    el("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await signIn(data.get("email"), data.get("password"));
      go("#/sites");
    } catch (exc) {
      error.hidden = false;
      error.textContent =
        exc.status === 401 ? "Wrong email or password." : `Sign-in failed: ${exc.message}`;
    }
  });
  show(
    el("h1", {}, "Sign in"),
    notice ? el("p", { class: "note", id: "notice", role: "status" }, notice.text) : "",
    form,
    el("p", { class: "small" }, el("a", { href: "#/signup", id: "to-signup" }, "Create an account"), " · ", el("a", { href: "#/forgot" }, "Forgot your password?")),
    el("p", { class: "muted small" }, "Owners see their sites; supporters see the sites an owner granted them."),
  );
}

async function sitesPage() {
  const [me, list] = await Promise.all([get("/v1/app/me"), get("/v1/app/sites")]);
  sites = list;
  shell(true);
  const who = el("p", { class: "muted small" }, `Signed in as ${me.email}. Your user ID (an owner grants you access with it): `, el("code", { id: "my-user-id" }, me.id));
  const add = me.role === "customer" ? el("a", { class: "button", href: "#/setup", id: "add-site" }, sites.length ? "Add another site" : "Set up your home") : "";
  if (sites.length === 0) {
    show(el("h1", {}, "Your sites"), el("p", { class: "note", id: "no-sites" }, "No sites yet. Sites you own and sites an owner granted you appear here."), add, who);
    return;
  }
  show(
    el("h1", {}, "Your sites"),
    el(
      "ul",
      { class: "sites", id: "site-list" },
      sites.map((s) =>
        el("li", { class: "card" },
          el("a", { href: `#/site/${encodeURIComponent(s.id)}/live`, "data-site": s.id },
            el("strong", {}, s.name),
            el("span", { class: "badge" }, ROLE_NAMES[s.your_role] || s.your_role)),
          s.your_role === "owner" ? el("a", { class: "small setup-link", href: `#/site/${encodeURIComponent(s.id)}/setup/pair` }, "Box and equipment") : ""),
      ),
    ),
    add,
    who,
  );
}

async function sitePage(siteId, tab) {
  const site = await get(`/v1/app/sites/${encodeURIComponent(siteId)}`);
  if (!sites.some((s) => s.id === site.id)) sites = await get("/v1/app/sites");
  shell(true, site, tab);
  const render = PAGES[tab] || renderLive;
  const container = el("section", { id: `page-${tab}` });
  show(container);
  cleanup = (await render(container, site)) || (() => {});
}

function lostAccess(message) {
  shell(true);
  show(el("h1", {}, "Not available"), el("p", { class: "error", id: "no-access" }, message), el("p", {}, el("a", { href: "#/sites" }, "Back to your sites")));
}

/** Called by pages when the API says the site is gone or no longer theirs. */
export function siteUnavailable() {
  cleanup();
  cleanup = () => {};
  sites = [];
  lostAccess("This site is not available to you (any more): the owner may have revoked your access.");
}

async function setupPage(siteId, step) {
  shell(true);
  const container = el("section");
  show(container);
  if (!siteId) return renderAddSite(container, go);
  const site = await get(`/v1/app/sites/${encodeURIComponent(siteId)}`);
  await (SETUP[step] || renderPair)(container, site, go);
}

async function route() {
  cleanup();
  cleanup = () => {};
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (MAILED[parts[0]]) {
    shell(false);
    await MAILED[parts[0]](go);
    return;
  }
  if (!session()) {
    shell(false);
    (PUBLIC[parts[0]] || signInPage)();
    return;
  }
  try {
    if (parts[0] === "setup") await setupPage();
    else if (parts[0] === "site" && parts[1] && parts[2] === "setup") await setupPage(parts[1], parts[3]);
    else if (parts[0] === "site" && parts[1]) await sitePage(parts[1], parts[2] || "live");
    else if (parts[0] === "notifications") {
      shell(true);
      const container = el("section", { id: "page-notifications" });
      show(container);
      await renderNotifications(container, bell);
    }
    else await sitesPage();
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) signInPage("Your session ended; please sign in again.");
    else if (exc instanceof ApiError && exc.status === 404) siteUnavailable();
    else show(el("p", { class: "error" }, `Could not load this page: ${exc.message}`));
  }
}

siteSelect.addEventListener("change", () => {
  const tab = tabs.querySelector("a.active")?.dataset.tab || "live";
  go(`#/site/${encodeURIComponent(siteSelect.value)}/${tab}`);
});
signOutButton.addEventListener("click", () => {
  signOut();
  sites = [];
  go("#/signin");
});
window.addEventListener("hashchange", route);
takeMailedLink();
route();
