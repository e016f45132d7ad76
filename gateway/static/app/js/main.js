// The client's shell: the session, the hash router, the header.

import { Session } from "./api.js";
import { authView } from "./auth.js";
import { toast } from "./dom.js";

const session = new Session();
const main = document.getElementById("main");
let current = null; // { el, destroy() } of the view on screen
let pending = null; // where a person was going before signing in

// Views are loaded on first use: a guest who only joins a meeting never loads the chat.
const VIEWS = {
  chat: () => import("./chat.js").then((m) => m.chatView),
  meet: () => import("./meeting.js").then((m) => m.meetingView),
};

function parse() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || "", args: parts.slice(1) };
}

export function go(path) {
  if (location.hash === `#${path}`) render();
  else location.hash = path;
}

function show(view, title) {
  current?.destroy?.();
  current = view;
  main.replaceChildren(view.el);
  document.title = title ? `${title} · Rooms` : "Rooms";
}

async function render() {
  const route = parse();
  updateHeader(route.name);
  if (!session.signedIn) {
    if (route.name) pending = location.hash.slice(1);
    show({ el: authView(session, { onDone: afterSignIn }) }, "Sign in");
    return;
  }
  let name = route.name;
  if (!VIEWS[name] || (name === "chat" && session.isGuest)) {
    name = session.isGuest ? "meet" : "chat";
    history.replaceState(null, "", `#/${name}`);
    updateHeader(name);
  }
  const token = {};
  render.latest = token;
  let factory;
  try {
    factory = await VIEWS[name]();
  } catch (err) {
    toast(`Could not load this page: ${err.message}`, "error");
    return;
  }
  if (render.latest !== token) return; // a newer navigation won
  show(factory(session, { args: route.args, go }), name === "chat" ? "Chat" : "Meetings");
}

function afterSignIn() {
  const target = pending;
  pending = null;
  go(target || (session.isGuest ? "/meet" : "/chat"));
}

function updateHeader(routeName) {
  const signed = session.signedIn;
  document.getElementById("nav").hidden = !signed;
  document.getElementById("account").hidden = !signed;
  for (const link of document.querySelectorAll("[data-users-only]")) link.hidden = session.isGuest;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === routeName) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.getElementById("whoami").textContent = signed
    ? `${session.displayName}${session.isGuest ? " (guest)" : ""}`
    : "";
}

session.addEventListener("signedout", (event) => {
  if (event.detail && event.detail !== "signed out") toast(event.detail, "error");
  render();
});
document.getElementById("signout").addEventListener("click", () => {
  // The view lets go first (a meeting is left) while the tokens are still good.
  current?.destroy?.();
  current = null;
  session.logout();
});
window.addEventListener("hashchange", render);
window.addEventListener("beforeunload", () => current?.destroy?.());
render();
