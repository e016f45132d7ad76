// A few DOM helpers: elements are built with h(), never from HTML strings, so
// text from the server (names, messages) can never become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled input: <label for> + <input id>.
export function field(label, attrs = {}) {
  const id = attrs.id || nextId("f");
  const input = h(attrs.tag || "input", { ...attrs, tag: undefined, id });
  return h("div", { class: attrs.type === "checkbox" ? "field check" : "field" },
    attrs.type === "checkbox" ? [input, h("label", { for: id }, label)] : [h("label", { for: id }, label), input]);
}

// The words a person reads for a failed call: the server's message, plus which field.
export function describe(err) {
  const details = err?.body?.details;
  if (Array.isArray(details) && details.length) {
    const first = details[0];
    return `${err.message}: ${first.field ? `${first.field} ` : ""}${first.message}`;
  }
  return err?.message || String(err);
}

export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}

// An inline message under a form: role=alert so screen readers hear it at once.
export function alertBox() {
  const box = h("p", { class: "alert", role: "alert", hidden: true });
  box.show = (text) => { box.textContent = text; box.hidden = !text; };
  return box;
}

export function formatTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

export function busy(form, on) {
  for (const el of form.querySelectorAll("button, input, select")) el.disabled = on;
}
