// Inside a meeting: the room's WebSocket (snapshot, events, signals), the peer
// connections of the mesh, and the screen (call_ui.js draws it).

import { describe, toast } from "./dom.js";
import { Peer } from "./peers.js";
import { CallScreen } from "./call_ui.js";
import { LiveSocket } from "./socket.js";

// Close codes after which coming back is pointless.
const FINAL = {
  1000: "left", // the server closes a socket whose participant left (from another tab)
  4403: "removed",
  4410: "ended",
  4404: "gone",
};

function newPcId() {
  return crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2);
}

export class Call {
  // onExit(reason, text): the meeting is over for this person (left, ended, removed, denied).
  constructor(session, { room, participant, media, onExit }) {
    this.session = session;
    this.room = room;
    this.self = participant;
    this.media = media;
    this.onExit = onExit;
    this.participants = new Map([[participant.id, participant]]);
    this.peers = new Map();
    this.iceServers = null;
    this.over = false;
    this.screen = new CallScreen(this);
    this.socket = new LiveSocket(session, {
      url: () => session.socketUrl(`/rooms/${this.room.id}/ws`),
      onMessage: (frame) => this.onFrame(frame),
      onStatus: (state, event) => this.onStatus(state, event),
      final: (code) => Boolean(FINAL[code]),
    });
    this._mediaChanged = () => this.onLocalMedia();
    media.addEventListener("change", this._mediaChanged);
  }

  get el() { return this.screen.el; }
  get isHost() { return Boolean(this.self?.isHost); }
  get joined() { return this.self?.status === "joined"; }

  start() {
    this.socket.start();
    this.screen.loadChat();
  }

  // --- the socket ---------------------------------------------------------------------

  onStatus(state, event) {
    this.screen.setConnection(state);
    if (state === "closed") {
      const reason = FINAL[event?.code];
      this.exit(reason || "gone");
    } else if (state === "reconnecting") {
      // Those connections are re-made by the next snapshot.
      this.closePeers();
    }
  }

  onFrame(frame) {
    switch (frame.type) {
      case "room.snapshot": return this.onSnapshot(frame);
      case "signal": return this.onSignal(frame);
      case "chat.message": return this.screen.addMessage(frame.message);
      case "error": return toast(frame.error, "error");
      case "room.ended": return this.exit("ended");
      default:
        if (frame.type?.startsWith("participant.")) return this.onParticipant(frame);
        if (frame.type?.startsWith("room.")) return this.onRoom(frame.room);
    }
    return undefined;
  }

  async onSnapshot(frame) {
    this.self = frame.self;
    this.room = frame.room;
    this.participants = new Map(frame.participants.map((p) => [p.id, p]));
    this.participants.set(this.self.id, this.self);
    this.closePeers();
    this.screen.renderAll();
    if (!this.joined) return;
    this.applyOwnMedia(this.self.media, true);
    this.sendMediaState();
    await this.loadIceServers();
    // We are the later one: we call everyone already connected (but not whoever
    // called us first while the ICE servers were being fetched).
    for (const other of this.participants.values()) {
      if (this.peers.has(other.id)) continue;
      if (other.id !== this.self.id && other.status === "joined" && other.connected !== false) {
        this.connect(other.id, newPcId()).startOffering();
      }
    }
  }

  async loadIceServers() {
    if (this.iceServers && Date.now() < this.iceServers.until) return;
    try {
      const data = await this.session.call("GET", `/rooms/${this.room.id}/ice-servers`);
      const ttl = Math.max(60, Number(data.ttl) || 3600);
      this.iceServers = { list: data.iceServers || [], until: Date.now() + ttl * 500 };
    } catch {
      // Without them, host candidates still connect peers on the same network.
      this.iceServers = { list: [], until: Date.now() + 60_000 };
    }
  }

  connect(participantId, pcId) {
    this.peers.get(participantId)?.close();
    const peer = new Peer({
      participantId,
      pcId,
      polite: this.self.id > participantId,
      iceServers: this.iceServers?.list || [],
      media: this.media,
      send: (kind, data) => this.socket.send({ type: "signal", to: participantId, kind, data }),
      onTrack: (p) => this.screen.showStream(p.participantId, p.stream),
      onState: (p, state) => this.screen.setPeerState(p.participantId, state),
    });
    this.peers.set(participantId, peer);
    return peer;
  }

  async onSignal(frame) {
    const { from, kind, data } = frame;
    if (!from || !data || typeof data.pc !== "string" || !this.joined) return;
    let peer = this.peers.get(from);
    if (kind === "offer" && (!peer || peer.pcId !== data.pc)) {
      // Both called each other at once: the polite side takes the other's call.
      const glare = peer && peer.pc.signalingState === "have-local-offer" && !peer.pc.remoteDescription;
      if (glare && !peer.polite) return;
      await this.loadIceServers();
      peer = this.connect(from, data.pc);
    }
    if (!peer || peer.pcId !== data.pc) return; // from a connection that is gone
    peer.signal(kind, data);
  }

  closePeers() {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.screen?.clearStreams();
  }

  dropPeer(participantId) {
    this.peers.get(participantId)?.close();
    this.peers.delete(participantId);
    this.screen.showStream(participantId, null);
  }

  // --- events ----------------------------------------------------------------------------

  onParticipant(frame) {
    const p = frame.participant;
    if (!p) return;
    const kind = frame.type.slice("participant.".length);
    const previous = this.participants.get(p.id);
    const merged = { ...previous, ...p };
    this.participants.set(p.id, merged);
    if (p.id === this.self.id || p.userId === this.self.userId) {
      this.self = merged;
      this.participants.set(p.id, merged);
      return this.onOwnChange(kind, merged, previous);
    }
    if (["left", "removed", "denied", "disconnected"].includes(kind) || merged.status !== "joined") {
      this.dropPeer(p.id);
    }
    if (kind === "waiting" && this.isHost) toast(`${p.displayName} is waiting to join`);
    if (kind === "media" && previous && previous.media?.audio && !p.media?.audio) {
      this.screen.announce(`${p.displayName} is muted`);
    }
    if (kind === "hand" && p.handRaised) toast(`${p.displayName} raised their hand`);
    this.screen.renderAll();
    return undefined;
  }

  onOwnChange(kind, me, previous) {
    if (kind === "admitted") {
      toast("The host let you in");
      this.screen.renderAll();
      this.socket.restart(); // a fresh snapshot: whom to call
      return;
    }
    if (kind === "denied") return this.exit("denied");
    if (kind === "removed") return this.exit("removed");
    if (kind === "media") this.applyOwnMedia(me.media, false, previous);
    this.screen.renderAll();
  }

  // The server's word on our media wins: the host muted us, or we joined muted.
  applyOwnMedia(state, joining, previous) {
    if (!state) return;
    if (state.audio === false && this.media.audioOn) {
      this.media.setAudio(false);
      if (joining) toast("You joined muted. Unmute when you want to speak.");
      else if (previous?.media?.audio !== false) toast("The host muted you");
    }
    if (state.screen === false && this.media.screen && !joining) {
      this.media.stopScreen();
    }
  }

  onRoom(room) {
    if (!room) return;
    const wasScreen = this.room?.settings?.allowScreenShare;
    this.room = room;
    if (!room.isActive) return this.exit("ended");
    if (wasScreen && !room.settings.allowScreenShare && !this.isHost && this.media.screen) {
      this.media.stopScreen();
    }
    this.screen.renderAll();
    return undefined;
  }

  // --- my own media -------------------------------------------------------------------------

  onLocalMedia() {
    for (const peer of this.peers.values()) peer.updateTracks();
    this.screen.showSelf();
  }

  sendMediaState() {
    this.socket.send({
      type: "media", audio: this.media.audioOn, video: this.media.videoOn, screen: Boolean(this.media.screen),
    });
  }

  toggleAudio() {
    if (!this.media.setAudio(!this.media.audioOn)) toast("No microphone is available", "error");
    this.sendMediaState();
    this.screen.renderAll();
  }

  async toggleVideo() {
    if (!(await this.media.setVideo(!this.media.videoOn))) toast("The camera is not available", "error");
    this.sendMediaState();
    this.screen.renderAll();
  }

  async toggleScreen() {
    if (this.media.screen) {
      this.media.stopScreen();
    } else {
      if (!this.isHost && !this.room.settings.allowScreenShare) {
        toast("Screen sharing is disabled in this room", "error");
        return;
      }
      try { await this.media.startScreen(); } catch { return; } // the person cancelled
    }
    this.sendMediaState();
    this.screen.renderAll();
  }

  toggleHand() {
    this.socket.send({ type: "hand", raised: !this.self.handRaised });
  }

  // --- actions through the API ------------------------------------------------------------

  async act(method, path, body) {
    try {
      return await this.session.call(method, path, body);
    } catch (err) {
      toast(describe(err), "error");
      return null;
    }
  }

  admit(p) { return this.act("POST", `/rooms/${this.room.id}/participants/${p.id}/admit`); }
  deny(p) { return this.act("POST", `/rooms/${this.room.id}/participants/${p.id}/deny`); }
  muteOther(p) { return this.act("POST", `/rooms/${this.room.id}/participants/${p.id}/mute`); }
  remove(p) { return this.act("DELETE", `/rooms/${this.room.id}/participants/${p.id}`); }
  async settings(changes) {
    const room = await this.act("PATCH", `/rooms/${this.room.id}/settings`, changes);
    if (room) this.onRoom(room);
    return room;
  }

  async end() {
    const room = await this.act("POST", `/rooms/${this.room.id}/end`);
    if (room) this.exit("ended");
  }

  async leave() {
    await this.act("POST", `/rooms/${this.room.id}/leave`);
    this.exit("left");
  }

  exit(reason) {
    if (this.over) return;
    this.over = true;
    this.destroy();
    this.onExit(reason);
  }

  destroy() {
    this.socket.stop();
    this.closePeers();
    this.media.removeEventListener("change", this._mediaChanged);
    this.media.stop();
  }
}
