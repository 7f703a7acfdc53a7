// Account pages before sign-in: sign-up, "forgot password", and the two pages the account
// mails link to. A mailed link is /ui/confirm-email#token=... or /ui/reset-password#token=...:
// the token is in the fragment, which the browser never sends, and takes it out of the address
// bar before anything else happens, so it reaches the API only in a POST body.
import { ApiError, publicPost } from "./api.js";
import { el } from "./format.js";

const NOTICE = "hbopt.notice";
const MAILED = { "confirm-email": "confirm-email", "reset-password": "reset-password" };
let mailedToken = null;

/**
 * On a mailed link's page: keep its token in memory and turn the address into the dashboard's
 * own route (#/confirm-email or #/reset-password). Call once, before the first route.
 */
export function takeMailedLink() {
  const page = MAILED[location.pathname.split("/").pop()];
  if (!page) return;
  mailedToken = new URLSearchParams(location.hash.slice(1)).get("token");
  history.replaceState(null, "", `./#/${page}`);
}

/** A one-time message (and email to fill in) for the next sign-in page. */
export function setNotice(text, email = "") {
  sessionStorage.setItem(NOTICE, JSON.stringify({ text, email }));
}

export function takeNotice() {
  const notice = JSON.parse(sessionStorage.getItem(NOTICE) || "null");
  sessionStorage.removeItem(NOTICE);
  return notice;
}

/** The reason the API gave for one field (422), else its message. */
export function reasonFor(exc, field) {
  const hit = (exc.fields || []).find((f) => f.field === field);
  return hit ? hit.reason : exc.message;
}

function page(title, ...nodes) {
  const main = document.getElementById("view");
  main.replaceChildren(el("section", { class: "account-page" }, el("h1", {}, title), ...nodes));
}

function alertBox() {
  return el("p", { class: "error", hidden: true, role: "alert" });
}

function showError(box, text) {
  box.hidden = false;
  box.textContent = text;
}

const passwordInput = (name, autocomplete) =>
  el("input", { name, type: "password", required: true, minlength: 10, maxlength: 128, autocomplete });

export function signUpPage() {
  const error = alertBox();
  const form = el("form", { class: "signin card", id: "signup" },
    el("label", {}, "Email", el("input", { name: "email", type: "email", required: true, autocomplete: "email" })),
    el("label", {}, "Password (at least 10 characters)", passwordInput("password", "new-password")),
    el("button", { type: "submit" }, "Create account"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const email = String(data.get("email")).trim();
    try {
      await publicPost("/v1/auth/register", { email, password: data.get("password") });
    } catch (exc) {
      const field = exc.status === 422 && exc.fields[0] ? exc.fields[0].field.replace("body.", "") : null;
      showError(error, field ? `${field}: ${exc.fields[0].reason}` : `Sign-up failed: ${exc.message}`);
      return;
    }
    page("Check your mailbox",
      el("p", { class: "note", id: "signup-sent", role: "status" },
        `We sent a confirmation link to ${email}. Open it within 24 hours to activate your account.`),
      el("p", { class: "muted small" }, "No mail? Look in the spam folder. An address that has an account already gets no second one."),
      el("p", {}, el("a", { href: "#/signin" }, "Back to sign-in")));
  });
  page("Create your account", form,
    el("p", { class: "muted small" }, "Already have an account? ", el("a", { href: "#/signin" }, "Sign in")));
}

export function forgotPage() {
  const error = alertBox();
  const form = el("form", { class: "signin card", id: "forgot" },
    el("label", {}, "Email", el("input", { name: "email", type: "email", required: true, autocomplete: "email" })),
    el("button", { type: "submit" }, "Mail me a reset link"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = String(new FormData(form).get("email")).trim();
    try {
      await publicPost("/v1/auth/password-reset", { email });
    } catch (exc) {
      showError(error, `Could not send: ${exc.message}`);
      return;
    }
    page("Check your mailbox",
      el("p", { class: "note", role: "status" }, `If ${email} has an account, a reset link is on its way. It is valid for 60 minutes.`),
      el("p", {}, el("a", { href: "#/signin" }, "Back to sign-in")));
  });
  page("Forgot your password?", form);
}

function usedLink(what) {
  page("This link does not work (any more)",
    el("p", { class: "error", id: "link-invalid", role: "alert" },
      `The ${what} link is unknown, used already or expired. Links work once.`),
    el("p", {}, el("a", { href: "#/signup" }, "Sign up again"), " · ", el("a", { href: "#/forgot" }, "Mail me a new password link")));
}

export async function confirmPage(go) {
  const token = mailedToken;
  mailedToken = null;
  if (!token) return usedLink("confirmation");
  page("Confirming your address…");
  try {
    const user = await publicPost("/v1/auth/confirm", { token });
    setNotice(`Your address ${user.email} is confirmed. Sign in to set up your home.`, user.email);
    go("#/signin");
  } catch (exc) {
    if (exc instanceof ApiError && exc.status < 500) usedLink("confirmation");
    else page("Could not confirm", el("p", { class: "error", role: "alert" }, exc.message));
  }
}

export function resetPage(go) {
  const token = mailedToken;
  if (!token) return usedLink("password reset");
  const error = alertBox();
  const form = el("form", { class: "signin card", id: "reset" },
    el("label", {}, "New password (at least 10 characters)", passwordInput("new_password", "new-password")),
    el("button", { type: "submit" }, "Set new password"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await publicPost("/v1/auth/password-reset/confirm", { token, new_password: new FormData(form).get("new_password") });
    } catch (exc) {
      if (exc.status === 400) return usedLink("password reset");
      showError(error, reasonFor(exc, "body.new_password"));
      return;
    }
    mailedToken = null;
    setNotice("Your password is changed; every other session was signed out. Sign in with the new one.");
    go("#/signin");
  });
  page("Choose a new password", form);
}
