// Meetings: start one, join by code, the pre-join screen (camera preview), the
// waiting room, the call itself (call.js), and a clear word for every refusal.

import { Call } from "./call.js";
import { LocalMedia } from "./local_media.js";
import { alertBox, busy, describe, field, formatTime, h } from "./dom.js";
import { newKey } from "./api.js";

const CODE = /([a-z]{3}-[a-z]{3}-[a-z]{3})/i;

// The server's refusals, in the words a person expects.
const REFUSALS = {
  "Room not found": "No meeting has this code. Check it and try again.",
  "Room is no longer active": "This meeting has ended.",
  "Room is locked": "This meeting is locked: the host is not letting anyone else in.",
  "Room is full": "This meeting is full. Try again when someone leaves.",
  "Guest access is not allowed": "This meeting does not allow guests. Sign in with an account to join.",
  "You have been removed from this room": "The host removed you from this meeting.",
};

const EXITS = {
  ended: ["The meeting has ended", "The host ended the meeting for everyone."],
  removed: ["You were removed from the meeting", "The host removed you. You cannot join again."],
  denied: ["The host did not let you in", "Your request to join was declined."],
  left: ["You left the meeting", null],
  gone: ["The meeting is not available", "The connection to the meeting was refused."],
};

export function refusalText(err) {
  return REFUSALS[err?.message] || describe(err);
}

export function meetingView(session, { args, go }) {
  const el = h("div", { class: "meet-page" });
  let call = null;
  let media = null;
  const code = args[0] ? String(args[0]).toLowerCase() : null;

  if (code) prejoin(code);
  else home();

  function home() {
    const cards = [];
    if (!session.isGuest) {
      const alert = alertBox();
      const form = h("form", { "aria-label": "Start a meeting" },
        field("Meeting name", { name: "name", maxlength: 100, placeholder: "Meeting Room" }),
        field("Waiting room (you admit each person)", { name: "waitingRoom", type: "checkbox" }),
        field("Maximum participants", { name: "maxParticipants", type: "number", min: 2, max: 100, value: 50 }),
        alert,
        h("button", { type: "submit", class: "primary" }, "Start meeting"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const body = { waitingRoom: data.get("waitingRoom") === "on", maxParticipants: Number(data.get("maxParticipants")) };
        const name = String(data.get("name")).trim();
        if (name) body.name = name;
        alert.show("");
        busy(form, true);
        try {
          const room = await session.call("POST", "/rooms", body, { headers: { "Idempotency-Key": newKey() } });
          go(`/meet/${room.code}`);
        } catch (err) {
          alert.show(describe(err));
        } finally { busy(form, false); }
      });
      cards.push(h("section", { class: "card", "aria-labelledby": "start-title" },
        h("h2", { id: "start-title" }, "Start a meeting"), form));
    }
    const joinAlert = alertBox();
    const joinForm = h("form", { "aria-label": "Join with a code" },
      field("Meeting code or link", { name: "code", required: true, placeholder: "abc-def-ghi", autocomplete: "off" }),
      joinAlert,
      h("button", { type: "submit" }, "Join"));
    joinForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const match = CODE.exec(String(new FormData(joinForm).get("code")));
      if (!match) { joinAlert.show("A meeting code looks like abc-def-ghi."); return; }
      go(`/meet/${match[1].toLowerCase()}`);
    });
    cards.push(h("section", { class: "card", "aria-labelledby": "join-title" },
      h("h2", { id: "join-title" }, "Join with a code"), joinForm));
    const list = h("ul", { class: "room-list", "aria-label": "Your meetings" }, h("li", { class: "hint" }, "Loading…"));
    cards.push(h("section", { class: "card", "aria-labelledby": "mine-title" },
      h("h2", { id: "mine-title" }, "Your meetings"), list));
    el.replaceChildren(h("div", { class: "meet-home" }, cards));
    session.call("GET", "/rooms").then((page) => {
      list.replaceChildren(...(page.rooms.length ? page.rooms.map((room) => h("li", {},
        h("a", { href: `#/meet/${room.code}` }, room.name),
        h("span", { class: "meta" }, room.isActive ? room.code : `ended ${formatTime(room.endedAt)}`)))
        : [h("li", { class: "hint" }, "None yet.")]));
    }).catch((err) => list.replaceChildren(h("li", { class: "alert" }, describe(err))));
  }

  async function prejoin(roomCode) {
    const alert = alertBox();
    const heading = h("h1", { id: "prejoin-title" }, "Joining…");
    const about = h("p", { class: "hint" });
    const video = h("video", { autoplay: true, playsinline: true, muted: true, "aria-label": "Your camera preview" });
    video.muted = true;
    const preview = h("figure", { class: "tile self" }, video);
    const mic = h("button", { type: "button" });
    const cam = h("button", { type: "button" });
    const join = h("button", { type: "button", class: "primary", disabled: true }, "Join now");
    const back = h("a", { href: "#/meet" }, "Back to meetings");
    el.replaceChildren(h("section", { class: "card prejoin", "aria-labelledby": "prejoin-title" },
      heading, about, preview, h("div", { class: "controls" }, mic, cam, join), alert, back));

    const local = new LocalMedia();
    media = local;
    const paint = () => {
      if (media !== local) { local.removeEventListener("change", paint); return; } // the call has it
      mic.textContent = local.audioOn ? "Mute" : "Unmute";
      mic.className = local.audioOn ? "" : "off";
      mic.disabled = !local.audio;
      cam.textContent = local.videoOn ? "Stop video" : "Start video";
      cam.className = local.videoOn ? "" : "off";
      video.srcObject = local.stream;
    };
    local.addEventListener("change", paint);
    mic.addEventListener("click", () => local.setAudio(!local.audioOn));
    cam.addEventListener("click", () => local.setVideo(!local.videoOn));

    let info;
    try {
      info = await session.call("GET", `/rooms/code/${encodeURIComponent(roomCode)}`, undefined, { auth: false });
    } catch (err) {
      heading.textContent = "Cannot join";
      alert.show(refusalText(err));
      return;
    }
    heading.textContent = info.name;
    const host = info.host?.displayName ? `Hosted by ${info.host.displayName}. ` : "";
    about.textContent = `${host}Code ${info.code}.`;
    if (!info.isActive) { alert.show(REFUSALS["Room is no longer active"]); return; }
    if (session.isGuest && !info.settings.allowGuestAccess) { alert.show(REFUSALS["Guest access is not allowed"]); return; }
    if (info.isLocked) alert.show("This meeting is locked; only the host can join now.");
    const isHost = info.host?.id === session.userId;
    join.textContent = info.settings.waitingRoom && !isHost ? "Ask to join" : "Join now";
    await local.start();
    paint();
    if (local.error && !local.camera) about.textContent += " Your camera is not available; you can still join.";
    join.disabled = false;
    join.focus();
    join.addEventListener("click", async () => {
      join.disabled = true;
      alert.show("");
      try {
        const result = await session.call("POST", `/rooms/code/${encodeURIComponent(roomCode)}/join`);
        enter(result.room, result.participant);
      } catch (err) {
        alert.show(refusalText(err));
        join.disabled = false;
      }
    });
  }

  function enter(room, participant) {
    call = new Call(session, { room, participant, media, onExit: (reason) => exitScreen(reason, room) });
    media = null; // the call owns it now
    el.replaceChildren(call.el);
    call.screen.renderAll();
    call.start();
  }

  function exitScreen(reason, room) {
    call = null;
    const [title, text] = EXITS[reason] || EXITS.gone;
    const actions = [h("a", { href: "#/meet" }, "Back to meetings")];
    if (reason === "left") actions.unshift(h("button", { type: "button", class: "primary", onclick: () => prejoin(room.code) }, "Rejoin"), " ");
    el.replaceChildren(h("section", { class: "card ended", role: "alert", "aria-labelledby": "exit-title" },
      h("h1", { id: "exit-title" }, title), text ? h("p", {}, text) : null, h("p", {}, actions)));
  }

  return {
    el,
    destroy: () => {
      if (call) {
        // Leaving the page leaves the meeting, as closing a Meet tab does.
        const roomId = call.room.id;
        call.destroy();
        call = null;
        if (session.signedIn) {
          session.call("POST", `/rooms/${roomId}/leave`, undefined, { keepalive: true }).catch(() => {});
        }
      }
      media?.stop();
    },
  };
}
