// Sign in, register, or continue as a guest (meetings only).

import { alertBox, busy, describe, field, h } from "./dom.js";

export function authView(session, { onDone }) {
  const panels = {};
  const tabs = {};
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "How to continue" });

  function select(name, focus = false) {
    for (const [key, tab] of Object.entries(tabs)) {
      const on = key === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      panels[key].hidden = !on;
    }
    if (focus) tabs[name].focus();
  }

  function addTab(name, label, panel) {
    const tab = h("button", {
      type: "button", role: "tab", id: `tab-${name}`, "aria-controls": `panel-${name}`,
      onclick: () => select(name),
    }, label);
    panel.id = `panel-${name}`;
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", tab.id);
    tabs[name] = tab;
    panels[name] = panel;
    tablist.append(tab);
  }

  tablist.addEventListener("keydown", (event) => {
    const names = Object.keys(tabs);
    const current = names.findIndex((n) => tabs[n] === document.activeElement);
    if (current < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step) {
      event.preventDefault();
      select(names[(current + step + names.length) % names.length], true);
    }
  });

  function form(label, fields, submit, run) {
    const alert = alertBox();
    const el = h("form", { "aria-label": label, novalidate: false }, fields, alert,
      h("button", { type: "submit", class: "primary" }, submit));
    el.addEventListener("submit", async (event) => {
      event.preventDefault();
      alert.show("");
      const data = new FormData(el); // before busy(): disabled fields are not submitted
      busy(el, true);
      try {
        await run(data);
        onDone();
      } catch (err) {
        alert.show(describe(err));
      } finally {
        busy(el, false);
      }
    });
    return el;
  }

  const signIn = form("Sign in", [
    field("Username or email", { name: "username", autocomplete: "username", required: true }),
    field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
  ], "Sign in", async (data) => {
    const who = String(data.get("username")).trim();
    const body = { password: String(data.get("password")) };
    if (who.includes("@")) body.email = who; else body.username = who;
    await session.login(body);
  });

  const register = form("Register", [
    field("Username", {
      name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 32,
      pattern: "[A-Za-z0-9_.\\-]{3,32}", title: "3 to 32 letters, digits, dots, dashes or underscores",
    }),
    field("Display name (optional)", { name: "displayName", autocomplete: "name", maxlength: 50 }),
    field("Email (optional)", { name: "email", type: "email", autocomplete: "email" }),
    field("Password", {
      name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8,
    }),
  ], "Create account", async (data) => {
    const body = { username: String(data.get("username")).trim(), password: String(data.get("password")) };
    const displayName = String(data.get("displayName")).trim();
    const email = String(data.get("email")).trim();
    if (displayName) body.displayName = displayName;
    if (email) body.email = email;
    await session.register(body);
  });

  const guest = form("Continue as a guest", [
    h("p", { class: "hint" }, "Guests can join meetings that allow them. Chat rooms need an account."),
    field("Your name", { name: "displayName", autocomplete: "name", required: true, maxlength: 50 }),
  ], "Continue as guest", async (data) => {
    await session.guest(String(data.get("displayName")).trim());
  });

  addTab("signin", "Sign in", signIn);
  addTab("register", "Register", register);
  addTab("guest", "Guest", guest);
  select("signin");

  return h("section", { class: "card auth", "aria-labelledby": "auth-title" },
    h("h1", { id: "auth-title" }, "Welcome to Rooms"),
    tablist, signIn, register, guest);
}
