// One open chat room: the history with "load older", live messages over the
// room's WebSocket (resumed with `after`, never a message twice), the composer
// and the members.

import { newKey } from "./api.js";
import { alertBox, describe, formatTime, h, toast } from "./dom.js";
import { LiveSocket } from "./socket.js";

const PAGE = 50;
const CLOSED = {
  4403: "You are no longer a member of this room.",
  4404: "This room was deleted.",
};

export function openRoom(session, room, { onGone, onChanged }) {
  const seen = new Map(); // message_id -> <li>, so no message is ever shown twice
  let newest = null; // highest message_id shown: where a reconnect resumes
  let nextBefore = null;
  let loadedOnce = false;

  const list = h("ol", { class: "messages", "aria-label": `Messages in ${room.name}`, "aria-live": "polite", tabindex: 0 });
  const older = h("button", { type: "button", class: "load-older", hidden: true, onclick: loadOlder }, "Load older messages");
  const status = h("span", { class: "status-dot", role: "status" }, "connecting…");
  const notice = alertBox();
  const input = h("textarea", {
    id: "composer", name: "message", rows: 1, maxlength: 4000, required: true,
    placeholder: `Message ${room.name}`, "aria-label": "Message",
  });
  const composer = h("form", { class: "composer", "aria-label": "Send a message" },
    input, h("button", { type: "submit", class: "primary" }, "Send"));
  const membersList = h("ul", {});
  const members = h("aside", { class: "members card", "aria-labelledby": "members-title" },
    h("h2", { id: "members-title" }, "Members"), membersList);

  const leave = h("button", { type: "button", onclick: leaveRoom }, "Leave");
  const remove = room.is_creator
    ? h("button", { type: "button", class: "danger", onclick: deleteRoom }, "Delete room")
    : null;
  const panel = h("section", { class: "conversation card", "aria-labelledby": "room-title" },
    h("header", {},
      h("h2", { id: "room-title" }, room.name),
      room.is_private ? h("span", { class: "badge" }, "private") : null,
      status, leave, remove),
    notice,
    h("div", { class: "history-top" }, older),
    list,
    composer);

  function render(message) {
    if (seen.has(message.message_id)) return;
    const mine = message.username === session.username;
    const item = h("li", { class: mine ? "message mine" : "message", dataset: { id: message.message_id } },
      h("span", { class: "who" }, mine ? "You" : message.username, " · ",
        h("time", { datetime: message.created_at }, formatTime(message.created_at))),
      h("span", { class: "text" }, message.message));
    // Keep the list in id order whatever order messages arrive in.
    let after = null;
    for (const [id, el] of seen) if (id < message.message_id && (!after || id > Number(after.dataset.id))) after = el;
    if (after) after.after(item);
    else list.prepend(item);
    seen.set(message.message_id, item);
    list.querySelector(".empty")?.remove();
    if (newest === null || message.message_id > newest) newest = message.message_id;
    if (!membersList.querySelector(`[data-user="${CSS.escape(message.username)}"]`)) loadMembers();
  }

  function atBottom() { return list.scrollHeight - list.scrollTop - list.clientHeight < 80; }

  async function loadHistory() {
    const page = await session.call("GET", `/api/get_room_messages?room_id=${room.room_id}&limit=${PAGE}`);
    for (const message of page.messages.slice().reverse()) render(message);
    nextBefore = page.next_before;
    older.hidden = nextBefore === null;
    if (!seen.size) list.append(h("li", { class: "empty" }, "No messages yet. Say hello!"));
    list.scrollTop = list.scrollHeight;
  }

  async function loadOlder() {
    if (nextBefore === null) return;
    older.disabled = true;
    const top = list.firstElementChild;
    try {
      const page = await session.call("GET",
        `/api/get_room_messages?room_id=${room.room_id}&limit=${PAGE}&before=${nextBefore}`);
      for (const message of page.messages) render(message);
      nextBefore = page.next_before;
      older.hidden = nextBefore === null;
      top?.scrollIntoView({ block: "start" });
    } catch (err) {
      notice.show(describe(err));
    } finally {
      older.disabled = false;
    }
  }

  async function loadMembers() {
    try {
      const data = await session.call("GET", `/api/room_members/${room.room_id}`);
      membersList.replaceChildren(...data.members.map((m) => h("li", { dataset: { user: m.username } },
        m.username, m.is_creator ? h("span", { class: "badge" }, "creator") : null)));
    } catch (err) {
      if (err.status === 403 || err.status === 404) gone(err.status === 404 ? 4404 : 4403);
    }
  }

  const socket = new LiveSocket(session, {
    // Once the history is shown, every (re)connect resumes after the newest message
    // seen (0 in an empty room): the server replays what was missed, then goes live.
    url: () => session.socketUrl(`/api/rooms/${room.room_id}/ws`, { after: loadedOnce ? (newest ?? 0) : null }),
    onMessage: (message) => {
      if (typeof message.message_id !== "number") return;
      const follow = atBottom();
      render(message);
      if (follow) list.scrollTop = list.scrollHeight;
    },
    onStatus: (state, event) => {
      status.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", closed: "closed" }[state];
      status.classList.toggle("live", state === "live");
      // A refused upgrade is only a 1006 to a browser: ask the API why.
      if (state === "reconnecting" && event?.code === 1006 && (socket.attempt >= 2 || !loadedOnce)) loadMembers();
    },
    final: (code) => {
      if (CLOSED[code]) { gone(code); return true; }
      return false;
    },
  });

  function gone(code) {
    socket.stop();
    input.disabled = true;
    composer.querySelector("button").disabled = true;
    status.textContent = "closed";
    notice.show(CLOSED[code]);
    onGone(room, CLOSED[code]);
  }

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    notice.show("");
    const key = newKey();
    try {
      let sent;
      const body = { room_id: room.room_id, message: text };
      try {
        sent = await session.call("POST", "/api/send_room_message", body, { headers: { "Idempotency-Key": key } });
      } catch (err) {
        if (err.status !== 0) throw err;
        // The network dropped: the same key makes the retry safe (sent once at most).
        sent = await session.call("POST", "/api/send_room_message", body, { headers: { "Idempotency-Key": key } });
      }
      // Shown at once, even before the socket echoes it (the echo is then ignored).
      render({ message_id: sent.message_id, room_id: room.room_id, username: session.username,
        message: text, created_at: sent.created_at });
      list.scrollTop = list.scrollHeight;
    } catch (err) {
      input.value = text;
      notice.show(describe(err));
    }
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  async function leaveRoom() {
    try {
      const data = await session.call("POST", "/api/leave_room", { room_id: room.room_id });
      toast(data.message);
      onChanged(null);
    } catch (err) { notice.show(describe(err)); }
  }

  async function deleteRoom() {
    if (!confirm(`Delete "${room.name}" and all its messages for everyone?`)) return;
    try {
      const data = await session.call("POST", "/api/delete_room", { room_id: room.room_id });
      toast(data.message);
      onChanged(null);
    } catch (err) { notice.show(describe(err)); }
  }

  // Subscribe first, then read: a message sent in between arrives on the socket
  // and in the history, and shows once.
  async function onOpen() {
    if (loadedOnce) return;
    try {
      await loadHistory();
      loadedOnce = true;
      loadMembers();
    } catch (err) {
      if (err.status === 403 || err.status === 404) gone(err.status === 404 ? 4404 : 4403);
      else notice.show(describe(err));
    }
  }
  socket.onOpen = onOpen;
  socket.start();

  return {
    panel,
    members,
    focus: () => input.focus(),
    destroy: () => socket.stop(),
    get loaded() { return loadedOnce; },
  };
}
