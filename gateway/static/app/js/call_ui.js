// What a meeting looks like: the video grid, the controls, the people (with the
// host's admit / deny / mute / remove), the host's room settings, and the chat.

import { alertBox, describe, field, formatTime, h, toast } from "./dom.js";
import { newKey } from "./api.js";

function initials(name) {
  return (name || "?").trim().split(/\s+/).slice(0, 2).map((w) => w[0]?.toUpperCase() || "").join("") || "?";
}

export class CallScreen {
  constructor(call) {
    this.call = call;
    this.tiles = new Map(); // participantId -> { el, video, label, flags }
    this.seenMessages = new Set();
    this.title = h("h1", { id: "meeting-title" });
    this.code = h("span", { class: "code" });
    this.lockBadge = h("span", { class: "badge", hidden: true }, "locked");
    this.connection = h("span", { class: "status-dot", role: "status" }, "connecting…");
    this.live = h("p", { class: "visually-hidden", "aria-live": "polite" });
    this.grid = h("div", { class: "grid", role: "list", "aria-label": "Participants' video" });
    this.controls = h("div", { class: "controls", role: "toolbar", "aria-label": "Meeting controls" });
    this.people = h("ul", { class: "people", "aria-label": "In the meeting" });
    this.waitingList = h("ul", { class: "people", "aria-label": "Waiting to join" });
    this.waitingBox = h("section", { class: "card", "aria-labelledby": "waiting-title", hidden: true },
      h("h2", { id: "waiting-title" }, "Waiting to join"), this.waitingList);
    this.hostBox = h("section", { class: "card", "aria-labelledby": "host-title", hidden: true });
    this.chatList = h("ol", { class: "messages", "aria-label": "Meeting chat messages", tabindex: 0 });
    this.chatAlert = alertBox();
    this.chatInput = h("input", { name: "content", maxlength: 4000, required: true, "aria-label": "Chat message", autocomplete: "off" });
    this.chatForm = h("form", { "aria-label": "Send a chat message" }, this.chatInput,
      h("button", { type: "submit" }, "Send"));
    this.chatForm.addEventListener("submit", (event) => { event.preventDefault(); this.sendChat(); });
    this.waitingNotice = h("section", { class: "card waiting", hidden: true },
      h("h2", {}, "Waiting for the host to let you in"),
      h("p", { class: "hint" }, "You will join as soon as the host admits you. Keep this page open."),
      h("button", { type: "button", onclick: () => call.leave() }, "Leave the waiting room"));
    this.stage = h("div", { class: "stage" },
      h("header", {}, this.title, this.code,
        h("button", { type: "button", onclick: () => this.copyLink() }, "Copy invite link"),
        this.lockBadge, this.connection),
      this.live, this.waitingNotice, this.grid, this.controls);
    this.side = h("aside", { class: "side", "aria-label": "People and chat" },
      this.waitingBox,
      h("section", { class: "card", "aria-labelledby": "people-title" },
        h("h2", { id: "people-title" }, "People"), this.people),
      this.hostBox,
      h("section", { class: "card meeting-chat", "aria-labelledby": "chat-title" },
        h("h2", { id: "chat-title" }, "Chat"), this.chatList, this.chatAlert, this.chatForm));
    this.el = h("div", { class: "meeting" }, this.stage, this.side);
  }

  announce(text) { this.live.textContent = text; }

  setConnection(state) {
    this.connection.textContent = { live: "connected", connecting: "connecting…", reconnecting: "reconnecting…", closed: "closed" }[state];
    this.connection.classList.toggle("live", state === "live");
  }

  copyLink() {
    const link = `${location.origin}/app/#/meet/${this.call.room.code}`;
    navigator.clipboard?.writeText(link).then(() => toast("Invite link copied"), () => toast(link));
  }

  renderAll() {
    const { room, self } = this.call;
    if (!room || !self) return;
    this.title.textContent = room.name;
    this.code.textContent = room.code;
    this.lockBadge.hidden = !room.isLocked;
    const waiting = self.status === "waiting";
    this.waitingNotice.hidden = !waiting;
    this.grid.hidden = waiting;
    this.renderTiles();
    this.renderControls();
    this.renderPeople();
    this.renderHost();
    const chatOn = room.settings.allowChat;
    this.chatInput.disabled = !chatOn || waiting;
    this.chatInput.placeholder = chatOn ? "Message everyone" : "Chat is turned off by the host";
  }

  joinedPeople() {
    return [...this.call.participants.values()].filter((p) => p.status === "joined");
  }

  // --- video tiles ------------------------------------------------------------------------

  tile(p) {
    let tile = this.tiles.get(p.id);
    if (!tile) {
      const mine = p.id === this.call.self.id;
      const video = h("video", { autoplay: true, playsinline: true, muted: mine });
      video.muted = mine; // the attribute alone does not mute
      const avatar = h("span", { class: "avatar", "aria-hidden": "true" });
      const name = h("span", { class: "name" });
      const flags = h("span", { class: "flags" });
      const hand = h("span", { class: "hand", hidden: true }, "Hand raised");
      const el = h("figure", { class: mine ? "tile self" : "tile", role: "listitem", dataset: { participant: p.id } },
        video, avatar, hand, h("figcaption", { class: "label" }, name, flags));
      tile = { el, video, avatar, name, flags, hand, mine };
      this.tiles.set(p.id, tile);
      this.grid.append(el);
    }
    return tile;
  }

  renderTiles() {
    const joined = this.call.self.status === "joined" ? this.joinedPeople() : [];
    const ids = new Set(joined.map((p) => p.id));
    for (const [id, tile] of this.tiles) {
      if (!ids.has(id)) { tile.el.remove(); this.tiles.delete(id); }
    }
    for (const p of joined) {
      const tile = this.tile(p);
      const mine = tile.mine;
      const media = mine
        ? { audio: this.call.media.audioOn, video: this.call.media.videoOn || Boolean(this.call.media.screen), screen: Boolean(this.call.media.screen) }
        : p.media || { audio: true, video: true, screen: false };
      tile.el.setAttribute("aria-label", `${p.displayName}${mine ? " (you)" : ""}`);
      tile.name.textContent = `${p.displayName}${mine ? " (you)" : ""}${p.isHost ? " · host" : ""}`;
      tile.flags.replaceChildren(
        media.audio ? "" : h("span", { class: "muted-flag" }, "muted"),
        media.screen ? h("span", {}, " · presenting") : "",
        !mine && p.connected === false ? h("span", {}, " · connecting…") : "");
      tile.el.classList.toggle("screen", Boolean(media.screen));
      tile.hand.hidden = !p.handRaised;
      tile.avatar.textContent = initials(p.displayName);
      const hasVideo = tile.video.srcObject?.getVideoTracks().length > 0;
      tile.avatar.hidden = media.video && hasVideo;
      tile.video.style.visibility = media.video && hasVideo ? "visible" : "hidden";
      if (mine && tile.video.srcObject !== this.call.media.stream) this.showSelf();
    }
  }

  showSelf() {
    const tile = this.tiles.get(this.call.self?.id);
    if (!tile) return;
    tile.video.srcObject = this.call.media.stream;
    tile.video.play().catch(() => {});
    this.renderTilesSoon();
  }

  showStream(participantId, stream) {
    const tile = this.tiles.get(participantId);
    if (!tile) return;
    if (tile.video.srcObject !== stream) {
      tile.video.srcObject = stream;
      if (stream) tile.video.play().catch(() => {});
    }
    this.renderTilesSoon();
  }

  setPeerState(participantId, state) {
    const tile = this.tiles.get(participantId);
    if (tile) tile.el.dataset.connection = state;
  }

  clearStreams() {
    for (const tile of this.tiles.values()) if (!tile.mine) tile.video.srcObject = null;
  }

  renderTilesSoon() {
    if (this._pending) return;
    this._pending = requestAnimationFrame(() => { this._pending = null; this.renderTiles(); });
  }

  // --- controls ---------------------------------------------------------------------------

  // The buttons are made once and relabelled, so keyboard focus stays on them.
  renderControls() {
    const { call } = this;
    const media = call.media;
    if (!this.buttons) {
      const button = (onclick, attrs = {}) => h("button", { type: "button", onclick, ...attrs });
      this.buttons = {
        mic: button(() => call.toggleAudio()),
        camera: button(() => call.toggleVideo()),
        share: button(() => call.toggleScreen()),
        hand: button(() => call.toggleHand()),
        end: button(() => this.confirmEnd(), { class: "danger solid" }),
        leave: button(() => call.leave(), { class: "danger" }),
      };
      this.buttons.end.textContent = "End meeting for all";
      this.buttons.leave.textContent = "Leave";
      this.controls.replaceChildren(...Object.values(this.buttons));
    }
    const b = this.buttons;
    this.controls.hidden = call.self.status !== "joined";
    b.mic.textContent = media.audioOn ? "Mute" : "Unmute";
    b.mic.classList.toggle("off", !media.audioOn);
    b.camera.textContent = media.videoOn ? "Stop video" : "Start video";
    b.camera.classList.toggle("off", !media.videoOn);
    b.share.hidden = !(media.canShare && (call.isHost || call.room.settings.allowScreenShare));
    b.share.textContent = media.screen ? "Stop sharing" : "Share screen";
    b.share.classList.toggle("on", Boolean(media.screen));
    b.hand.textContent = call.self.handRaised ? "Lower hand" : "Raise hand";
    b.hand.classList.toggle("on", Boolean(call.self.handRaised));
    b.end.hidden = !call.isHost;
  }

  confirmEnd() {
    if (confirm("End the meeting for everyone?")) this.call.end();
  }

  // --- people -----------------------------------------------------------------------------

  renderPeople() {
    const { call } = this;
    const byName = (a, b) => (b.isHost - a.isHost) || a.displayName.localeCompare(b.displayName);
    const hostActions = call.isHost && call.self.status === "joined";
    this.people.replaceChildren(...this.joinedPeople().sort(byName).map((p) => {
      const mine = p.id === call.self.id;
      const audio = mine ? call.media.audioOn : p.media?.audio !== false;
      return h("li", {},
        h("span", { class: "name" }, p.displayName, mine ? " (you)" : "",
          p.isHost ? h("span", { class: "badge" }, "host") : null,
          p.isGuest ? h("span", { class: "badge" }, "guest") : null,
          audio ? null : h("span", { class: "badge" }, "muted"),
          p.handRaised ? h("span", { class: "badge" }, "hand raised") : null),
        hostActions && !mine && audio
          ? h("button", { type: "button", "aria-label": `Mute ${p.displayName}`, onclick: () => call.muteOther(p) }, "Mute") : null,
        hostActions && !mine && !p.isHost
          ? h("button", { type: "button", class: "danger", "aria-label": `Remove ${p.displayName}`, onclick: () => {
            if (confirm(`Remove ${p.displayName} from the meeting?`)) call.remove(p);
          } }, "Remove") : null);
    }));
    const waiting = [...call.participants.values()].filter((p) => p.status === "waiting");
    this.waitingBox.hidden = !call.isHost || waiting.length === 0;
    this.waitingList.replaceChildren(...waiting.map((p) => h("li", {},
      h("span", { class: "name" }, p.displayName, p.isGuest ? h("span", { class: "badge" }, "guest") : null),
      h("button", { type: "button", class: "primary", "aria-label": `Admit ${p.displayName}`, onclick: () => call.admit(p) }, "Admit"),
      h("button", { type: "button", "aria-label": `Deny ${p.displayName}`, onclick: () => call.deny(p) }, "Deny"))));
  }

  // --- the host's settings ----------------------------------------------------------------

  renderHost() {
    const { call } = this;
    this.hostBox.hidden = !call.isHost;
    if (!call.isHost) return;
    if (!this.lockButton) {
      this.lockButton = h("button", { type: "button", onclick: () => call.settings({ isLocked: !call.room.isLocked }) });
      this.settingsSlot = h("div", {});
      this.hostBox.replaceChildren(h("h2", { id: "host-title" }, "Host controls"), this.lockButton, this.settingsSlot);
    }
    this.lockButton.textContent = call.room.isLocked ? "Unlock meeting" : "Lock meeting";
    // Not while the host is typing in it.
    if (this.settingsSlot.contains(document.activeElement)) return;
    const s = call.room.settings;
    const alert = alertBox();
    const check = (label, name, value) => field(label, { type: "checkbox", name, checked: value });
    const form = h("form", { "aria-label": "Room settings" },
      field("Meeting name", { name: "name", value: call.room.name, maxlength: 100, required: true }),
      check("Chat", "allowChat", s.allowChat),
      check("Participants may share their screen", "allowScreenShare", s.allowScreenShare),
      check("Guests may join", "allowGuestAccess", s.allowGuestAccess),
      check("Waiting room", "waitingRoom", s.waitingRoom),
      check("Mute participants when they join", "muteParticipantsOnJoin", s.muteParticipantsOnJoin),
      field("Maximum participants", { name: "maxParticipants", type: "number", min: 2, max: 100, value: s.maxParticipants }),
      alert,
      h("button", { type: "submit" }, "Save settings"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const changes = { name: String(data.get("name")).trim(), maxParticipants: Number(data.get("maxParticipants")) };
      for (const key of ["allowChat", "allowScreenShare", "allowGuestAccess", "waitingRoom", "muteParticipantsOnJoin"]) {
        changes[key] = data.get(key) === "on";
      }
      alert.show("");
      try {
        const room = await call.session.call("PATCH", `/rooms/${call.room.id}/settings`, changes);
        call.onRoom(room);
        toast("Settings saved");
      } catch (err) { alert.show(describe(err)); }
    });
    const details = h("details", { open: this.settingsOpen }, h("summary", {}, "Settings"), form);
    details.addEventListener("toggle", () => { this.settingsOpen = details.open; });
    this.settingsSlot.replaceChildren(details);
  }

  // --- chat -------------------------------------------------------------------------------

  async loadChat() {
    try {
      const page = await this.call.session.call("GET", `/rooms/${this.call.room.id}/messages?limit=50`);
      for (const message of page.messages.slice().reverse()) this.addMessage(message);
    } catch (err) {
      if (err.status !== 403) this.chatAlert.show(describe(err));
    }
  }

  addMessage(message) {
    if (!message || this.seenMessages.has(message.id)) return;
    this.seenMessages.add(message.id);
    const mine = message.userId === this.call.session.userId;
    const follow = this.chatList.scrollHeight - this.chatList.scrollTop - this.chatList.clientHeight < 60;
    this.chatList.append(h("li", { class: mine ? "message mine" : "message" },
      h("span", { class: "who" }, mine ? "You" : message.displayName, " · ",
        h("time", { datetime: message.createdAt }, formatTime(message.createdAt))),
      h("span", { class: "text" }, message.content)));
    if (follow || mine) this.chatList.scrollTop = this.chatList.scrollHeight;
  }

  async sendChat() {
    const content = this.chatInput.value;
    if (!content.trim()) return;
    this.chatAlert.show("");
    this.chatInput.value = "";
    try {
      const message = await this.call.session.call("POST", `/rooms/${this.call.room.id}/messages`,
        { content }, { headers: { "Idempotency-Key": newKey() } });
      this.addMessage(message);
    } catch (err) {
      this.chatInput.value = content;
      this.chatAlert.show(describe(err));
    }
  }
}
