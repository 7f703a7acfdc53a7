// The JSON API with the signed-in user's tokens: every page reads through here, so the page
// shows exactly what the API answers and nothing it refuses.
const KEY = "hbopt.session";

export class ApiError extends Error {
  constructor(status, code, message, fields = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields; // [{field: "body.battery.capacity_kwh", reason}] on a 422
  }
}

export function session() {
  return JSON.parse(sessionStorage.getItem(KEY) || "null");
}

function keep(tokens) {
  sessionStorage.setItem(KEY, JSON.stringify(tokens));
}

async function toError(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "request failed";
  let fields = [];
  try {
    const body = await response.json();
    code = body.error.code;
    message = body.error.message;
    fields = body.error.fields || [];
  } catch {
    // not the API's error body (e.g. a proxy); keep the status line
  }
  return new ApiError(response.status, code, message, fields);
}

async function postJson(path, body) {
  return fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** A POST to a public route (registration, confirmation, password reset): JSON or null. */
export async function publicPost(path, body) {
  const response = await postJson(path, body);
  if (!response.ok) throw await toError(response);
  return response.status === 204 ? null : response.json();
}

export async function signIn(email, password) {
  const response = await postJson("/v1/auth/token", { email, password });
  if (!response.ok) throw await toError(response);
  keep(await response.json());
}

export function signOut() {
  const current = session();
  sessionStorage.removeItem(KEY);
  if (current) postJson("/v1/auth/logout", { refresh_token: current.refresh_token }).catch(() => {});
}

let refreshing = null;

/** Swap the refresh token for a new pair (once, however many requests ask at the same time). */
export function refresh() {
  refreshing ??= (async () => {
    const current = session();
    if (!current) throw new ApiError(401, "unauthorized", "please sign in");
    const response = await postJson("/v1/auth/refresh", { refresh_token: current.refresh_token });
    if (!response.ok) {
      sessionStorage.removeItem(KEY);
      throw await toError(response);
    }
    keep(await response.json());
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function authorized(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const current = session();
    if (!current) throw new ApiError(401, "unauthorized", "please sign in");
    const headers = { ...(init.headers || {}), Authorization: `Bearer ${current.access_token}` };
    const response = await fetch(path, { ...init, headers });
    if (response.status === 401 && attempt === 0) {
      await refresh();
      continue;
    }
    if (!response.ok) throw await toError(response);
    return response;
  }
}

export async function request(method, path, body) {
  const init = { method };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await authorized(path, init);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => request("GET", path);
export const put = (path, body) => request("PUT", path, body);
export const post = (path, body) => request("POST", path, body);
export const del = (path) => request("DELETE", path);

/** The response as a Blob (PNG card, export document). */
export async function blob(path) {
  return (await authorized(path)).blob();
}

/**
 * Server-sent events over fetch (EventSource cannot send the Authorization header).
 * Yields {event, data} with data parsed as JSON; returns when the server ends the stream.
 */
export async function* events(path, signal) {
  const response = await authorized(path, { signal, headers: { Accept: "text/event-stream" } });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}
