// One RTCPeerConnection per other participant, negotiated the "perfect
// negotiation" way (the W3C WebRTC pattern): either side may offer; on a
// collision the polite side rolls back and the impolite side ignores.
//
// Who offers first: whoever connects later (its room.snapshot lists those
// already there). Every signal carries `pc`, an id the offerer draws for this
// connection, so a signal from an older connection of the same participant (a
// page reload, a socket that came back) is told apart and never mixed in.

export class Peer {
  constructor({ participantId, pcId, polite, iceServers, media, send, onTrack, onState }) {
    this.participantId = participantId;
    this.pcId = pcId;
    this.polite = polite;
    this.media = media;
    this.send = send;
    this.stream = new MediaStream();
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.queue = Promise.resolve(); // signals are handled one at a time, in order
    this.pc = new RTCPeerConnection({ iceServers });
    this.pc.addEventListener("track", ({ track }) => {
      for (const old of this.stream.getTracks()) if (old.kind === track.kind) this.stream.removeTrack(old);
      this.stream.addTrack(track);
      onTrack(this);
    });
    this.pc.addEventListener("icecandidate", ({ candidate }) => {
      if (candidate) this.send("candidate", { pc: this.pcId, candidate: candidate.toJSON() });
    });
    this.pc.addEventListener("negotiationneeded", () => this._offer());
    this.pc.addEventListener("connectionstatechange", () => {
      onState(this, this.pc.connectionState);
      // A path that failed gets a new one through an ICE restart, from the offerer side.
      if (this.pc.connectionState === "failed" && !this.polite) this.pc.restartIce();
    });
  }

  // The side that offers first adds its transceivers; the other gets them from the offer.
  startOffering() {
    for (const kind of ["audio", "video"]) {
      this.pc.addTransceiver(this.media.track(kind) || kind, { direction: "sendrecv" });
    }
  }

  async _offer() {
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.send("offer", { pc: this.pcId, description: this.pc.localDescription.toJSON() });
    } catch (err) {
      console.warn("offer failed", err);
    } finally {
      this.makingOffer = false;
    }
  }

  signal(kind, data) {
    this.queue = this.queue.then(() => this._signal(kind, data)).catch((err) => console.warn("signal failed", err));
    return this.queue;
  }

  async _signal(kind, data) {
    if (kind === "candidate") {
      try {
        await this.pc.addIceCandidate(data.candidate);
      } catch (err) {
        if (!this.ignoreOffer) console.warn("candidate refused", err);
      }
      return;
    }
    const description = data.description;
    if (!description || !["offer", "answer"].includes(description.type)) return;
    const collision = description.type === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    await this.pc.setRemoteDescription(description); // rolls back our own offer if needed
    if (description.type === "offer") {
      this._sendOurTracks();
      await this.pc.setLocalDescription();
      this.send("answer", { pc: this.pcId, description: this.pc.localDescription.toJSON() });
    }
  }

  // On the answering side, the offer made the transceivers: put our tracks on them.
  _sendOurTracks() {
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track?.kind;
      if (!kind || transceiver.stopped) continue;
      if (transceiver.direction === "recvonly" || transceiver.direction === "inactive") {
        transceiver.direction = "sendrecv";
      }
      const track = this.media.track(kind);
      if (transceiver.sender.track !== track) transceiver.sender.replaceTrack(track);
    }
  }

  // Camera on/off, screen share: the same transceiver, another track, no renegotiation.
  async updateTracks() {
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track?.kind;
      if (!kind || transceiver.stopped) continue;
      const track = this.media.track(kind);
      if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
    }
  }

  close() {
    this.pc.close();
    for (const track of this.stream.getTracks()) track.stop();
  }
}
