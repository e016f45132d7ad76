// The chat page: my rooms, the public rooms, join by name, create; the open room beside.

import { openRoom } from "./chat_room.js";
import { alertBox, busy, describe, field, h, toast } from "./dom.js";
import { newKey } from "./api.js";

export function chatView(session, { args, go }) {
  const selected = args[0] ? Number(args[0]) : null;
  let mine = [];
  let mineCursor = null;
  let room = null;

  const mineList = h("ul", { class: "room-list", "aria-label": "Your rooms" });
  const moreMine = h("button", { type: "button", hidden: true, onclick: () => loadMine(true) }, "Show more");
  const publicList = h("ul", { class: "room-list", "aria-label": "Public rooms" });
  const main = h("div", { class: "conversation-slot" });
  const membersSlot = h("div", { class: "members-slot" });

  // Join by name (public, or private with its password).
  const joinAlert = alertBox();
  const joinForm = h("form", { "aria-label": "Join a room by name" },
    field("Room name", { name: "name", required: true, autocomplete: "off" }),
    field("Password (private rooms)", { name: "password", type: "password", autocomplete: "off" }),
    joinAlert,
    h("button", { type: "submit" }, "Join"));
  joinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(joinForm);
    const body = { name: String(data.get("name")).trim() };
    if (data.get("password")) body.password = String(data.get("password"));
    await submit(joinForm, joinAlert, async () => {
      const result = await session.call("POST", "/api/join_room", body);
      toast(result.message);
      joinForm.reset();
      await refresh();
      go(`/chat/${result.room_id}`);
    });
  });

  // Create: public, or private with a password.
  const createAlert = alertBox();
  const passwordField = field("Password", { name: "password", type: "password", autocomplete: "new-password" });
  passwordField.hidden = true;
  const privateBox = field("Private (password to join)", { name: "is_private", type: "checkbox" });
  privateBox.querySelector("input").addEventListener("change", (event) => {
    passwordField.hidden = !event.target.checked;
    passwordField.querySelector("input").required = event.target.checked;
  });
  const createForm = h("form", { "aria-label": "Create a room" },
    field("New room name", { name: "room_name", required: true, maxlength: 100, autocomplete: "off" }),
    privateBox, passwordField, createAlert,
    h("button", { type: "submit", class: "primary" }, "Create room"));
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(createForm);
    const isPrivate = data.get("is_private") === "on";
    const body = { room_name: String(data.get("room_name")).trim(), is_private: isPrivate ? 1 : 0 };
    if (isPrivate) body.password = String(data.get("password"));
    await submit(createForm, createAlert, async () => {
      const result = await session.call("POST", "/api/create_room", body, { headers: { "Idempotency-Key": newKey() } });
      toast(result.message);
      createForm.reset();
      passwordField.hidden = true;
      await refresh();
      go(`/chat/${result.room_id}`);
    });
  });

  async function submit(form, alert, run) {
    alert.show("");
    busy(form, true);
    try { await run(); } catch (err) { alert.show(describe(err)); } finally { busy(form, false); }
  }

  function roomLink(item, extra) {
    const link = h("a", { href: `#/chat/${item.room_id}`, "aria-current": item.room_id === selected ? "page" : null },
      "# ", item.name);
    const badge = item.is_private ? h("span", { class: "meta" }, "private") : null;
    return h("li", {}, link, badge, extra);
  }

  async function loadMine(more = false) {
    const query = more && mineCursor ? `?cursor=${encodeURIComponent(mineCursor)}` : "";
    const page = await session.call("GET", `/api/user_rooms${query}`);
    mine = more ? mine.concat(page.rooms) : page.rooms;
    mineCursor = page.next_cursor;
    moreMine.hidden = !mineCursor;
    mineList.replaceChildren(...(mine.length
      ? mine.map((r) => roomLink(r, r.is_creator ? h("span", { class: "meta" }, "creator") : null))
      : [h("li", { class: "hint" }, "No rooms yet: join or create one.")]));
  }

  async function loadPublic() {
    const data = await session.call("GET", "/api/rooms");
    publicList.replaceChildren(...(data.rooms.length ? data.rooms.map((r) => roomLink(r,
      r.joined
        ? h("span", { class: "meta" }, r.member_count === 1 ? "1 member" : `${r.member_count} members`)
        : h("button", { type: "button", "aria-label": `Join ${r.name}`, onclick: () => joinPublic(r) }, "Join")))
      : [h("li", { class: "hint" }, "No public rooms.")]));
  }

  async function joinPublic(target) {
    try {
      const result = await session.call("POST", "/api/join_room", { name: target.name });
      toast(result.message);
      await refresh();
      go(`/chat/${result.room_id}`);
    } catch (err) { toast(describe(err), "error"); }
  }

  async function refresh() {
    await Promise.all([loadMine(), loadPublic()]);
  }

  function showRoom() {
    room?.destroy();
    room = null;
    const info = mine.find((r) => r.room_id === selected);
    if (!selected) {
      main.replaceChildren(h("section", { class: "conversation card" },
        h("p", { class: "empty" }, "Pick a room on the left, join one by name, or create one.")));
      membersSlot.replaceChildren();
      return;
    }
    if (!info) {
      main.replaceChildren(h("section", { class: "conversation card" },
        h("p", { class: "empty", role: "alert" }, "You are not a member of this room. Join it by name to read it.")));
      membersSlot.replaceChildren();
      return;
    }
    room = openRoom(session, info, {
      onGone: (_, why) => { toast(why, "error"); refresh(); },
      onChanged: async () => { await refresh(); go("/chat"); },
    });
    main.replaceChildren(room.panel);
    membersSlot.replaceChildren(room.members);
    room.focus();
  }

  const el = h("div", { class: "chat" },
    h("aside", { class: "sidebar", "aria-label": "Rooms" },
      h("section", { class: "card" }, h("h2", {}, "Your rooms"), mineList, moreMine),
      h("section", { class: "card" }, h("h2", {}, "Public rooms"), publicList),
      h("section", { class: "card" }, h("h2", {}, "Join by name"), joinForm),
      h("section", { class: "card" }, h("h2", {}, "Create a room"), createForm)),
    main,
    membersSlot);

  refresh().then(showRoom).catch((err) => toast(describe(err), "error"));
  // Lists are not pushed: re-read them now and then, and when the page comes back into view.
  const poll = setInterval(() => { if (!document.hidden) refresh().catch(() => {}); }, 20_000);
  const onVisible = () => { if (!document.hidden) refresh().catch(() => {}); };
  document.addEventListener("visibilitychange", onVisible);

  return {
    el,
    destroy: () => {
      clearInterval(poll);
      document.removeEventListener("visibilitychange", onVisible);
      room?.destroy();
    },
  };
}
