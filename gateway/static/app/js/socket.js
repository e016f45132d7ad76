// A WebSocket that comes back: reconnects with backoff and jitter, at once when
// the server asks for a resync (1012) or the network returns, and never when
// the server said the stream is over for good (the view decides which codes).

const MAX_DELAY_MS = 15_000;
// Server codes that mean "reconnect now and resume": resync, too slow, restarting, going away.
const PROMPT = new Set([1001, 1012, 1013]);

// Closing a socket still connecting makes the browser log an error: wait for it to open.
function closeQuietly(ws) {
  if (ws.readyState === WebSocket.CONNECTING) ws.addEventListener("open", () => ws.close(1000));
  else ws.close(1000);
}

export class LiveSocket {
  // url(): the address to (re)connect to, with a fresh token and the resume point.
  // final(code, reason): true when this close ends the stream for good.
  constructor(session, { url, onOpen, onMessage, onStatus, final }) {
    this.session = session;
    this.url = url;
    this.onOpen = onOpen || (() => {});
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.final = final || (() => false);
    this.ws = null;
    this.stopped = false;
    this.attempt = 0;
    this.timer = null;
    this.openedAt = 0;
    this._online = () => { if (!this.ws && !this.stopped) this._retry(0); };
    window.addEventListener("online", this._online);
  }

  async start() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    // A page that slept may hold an expired token: refresh before reconnecting.
    const exp = this.session.claims?.exp ?? 0;
    if (exp * 1000 < Date.now() + 5000 && this.session.refreshToken) {
      try { await this.session.refresh(); } catch { /* the session reports it */ }
    }
    if (!this.session.signedIn || this.stopped) return;
    this.onStatus(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return; // stopped or replaced meanwhile
      this.openedAt = Date.now();
      this.onStatus("live");
      this.onOpen();
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let data;
      try { data = JSON.parse(event.data); } catch { return; }
      this.attempt = 0;
      this.onMessage(data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (this.final(event.code, event.reason)) {
        this.stopped = true;
        this.onStatus("closed", event);
        return;
      }
      if (Date.now() - this.openedAt > 10_000) this.attempt = 0;
      this.onStatus("reconnecting", event);
      this._retry(PROMPT.has(event.code) ? 200 : null);
    });
  }

  _retry(delay) {
    clearTimeout(this.timer);
    this.attempt += 1;
    const backoff = Math.min(MAX_DELAY_MS, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const wait = delay ?? backoff;
    this.timer = setTimeout(() => this.start(), wait / 2 + Math.random() * (wait / 2));
  }

  // Connect again now (a fresh snapshot), as after an admission from the waiting room.
  restart() {
    const ws = this.ws;
    this.ws = null;
    if (ws) closeQuietly(ws);
    this.attempt = 0;
    this.start();
  }

  get open() { return this.ws?.readyState === WebSocket.OPEN; }

  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this._online);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      closeQuietly(ws);
    }
  }
}
