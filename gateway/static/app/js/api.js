// The API on this origin, and the session: tokens live in memory only (never
// in localStorage, where any script on the origin could read them), and the
// access token is refreshed with the refresh token before it expires.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// Refresh this long before the access token expires (or at 80% of its life,
// whichever comes first), so a request never goes out with a dead token.
const REFRESH_MARGIN_S = 60;

function claimsOf(token) {
  const part = token.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
}

export class Session extends EventTarget {
  constructor() {
    super();
    this.accessToken = null;
    this.refreshToken = null;
    this.claims = null;
    this._timer = null;
    this._refreshing = null;
  }

  get signedIn() { return this.accessToken !== null; }
  get isGuest() { return this.claims?.role === "guest"; }
  get userId() { return this.claims?.sub ?? null; }
  get username() { return this.claims?.preferred_username ?? null; }
  get displayName() { return this.claims?.name || this.username || ""; }

  _adopt(tokens) {
    this.accessToken = tokens.access_token;
    if (tokens.refresh_token) this.refreshToken = tokens.refresh_token;
    this.claims = claimsOf(this.accessToken);
    clearTimeout(this._timer);
    const life = Number(tokens.expires_in) || 900;
    const wait = Math.max(5, Math.min(life * 0.8, life - REFRESH_MARGIN_S));
    if (this.refreshToken) {
      this._timer = setTimeout(() => this.refresh().catch(() => {}), wait * 1000);
    }
    this.dispatchEvent(new Event("change"));
  }

  _clear(reason) {
    clearTimeout(this._timer);
    this.accessToken = this.refreshToken = this.claims = null;
    this.dispatchEvent(new CustomEvent("signedout", { detail: reason }));
    this.dispatchEvent(new Event("change"));
  }

  async register(fields) { this._adopt(await this.call("POST", "/auth/register", fields, { auth: false })); }
  async login(fields) { this._adopt(await this.call("POST", "/auth/login", fields, { auth: false })); }
  async guest(displayName) {
    this._adopt(await this.call("POST", "/auth/guest", { displayName }, { auth: false }));
  }

  async logout() {
    const token = this.refreshToken;
    this._clear("signed out");
    if (token) {
      try { await this.call("POST", "/auth/logout", { refresh_token: token }, { auth: false }); }
      catch { /* signed out here either way */ }
    }
  }

  // One refresh at a time: several requests failing together wait for the same one.
  refresh() {
    if (!this.refreshToken) return Promise.reject(new ApiError(401, "unauthorized"));
    this._refreshing ??= this.call("POST", "/auth/refresh", { refresh_token: this.refreshToken }, { auth: false })
      .then((tokens) => this._adopt(tokens))
      .catch((err) => {
        if (err.status === 401) this._clear("Your session expired. Please sign in again.");
        throw err;
      })
      .finally(() => { this._refreshing = null; });
    return this._refreshing;
  }

  async call(method, path, body, { auth = true, headers = {}, retried = false, keepalive = false } = {}) {
    const init = { method, keepalive, headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (auth && this.accessToken) init.headers.Authorization = `Bearer ${this.accessToken}`;
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, "The server cannot be reached. Check your connection and try again.");
    }
    if (response.status === 401 && auth && !retried && this.refreshToken) {
      await this.refresh();
      return this.call(method, path, body, { auth, headers, keepalive, retried: true });
    }
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (!response.ok) {
      if (response.status === 401 && auth) this._clear("Your session expired. Please sign in again.");
      throw new ApiError(response.status, data?.error || `Request failed (${response.status})`, data);
    }
    return data;
  }

  // Browsers cannot set headers on a WebSocket: the token goes in the query.
  socketUrl(path, params = {}) {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    url.searchParams.set("access_token", this.accessToken);
    return url.toString();
  }
}

export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}
