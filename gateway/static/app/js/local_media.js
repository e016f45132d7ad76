// The camera, microphone and screen of this browser. Muting keeps the track and
// sends silence (track.enabled = false), so unmuting is instant; turning the
// camera off releases the device (its light goes out) and turning it on again
// takes a new track, swapped into every peer connection without renegotiation.

export class LocalMedia extends EventTarget {
  constructor() {
    super();
    this.stream = new MediaStream(); // what the self tile shows
    this.audio = null; // MediaStreamTrack or null
    this.camera = null;
    this.screen = null;
    this.audioOn = false;
    this.videoOn = false;
    this.error = null;
  }

  async start({ audio = true, video = true } = {}) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      });
      this.audio = stream.getAudioTracks()[0] || null;
      this.camera = stream.getVideoTracks()[0] || null;
    } catch (err) {
      // No camera, or refused: try the microphone alone, then go on without either.
      this.error = err;
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        this.audio = stream.getAudioTracks()[0] || null;
      } catch { /* listen-only */ }
    }
    this.audioOn = Boolean(this.audio) && audio;
    if (this.audio) this.audio.enabled = this.audioOn;
    this.videoOn = Boolean(this.camera) && video;
    if (this.camera && !video) { this.camera.stop(); this.camera = null; }
    this._restream();
  }

  // The track each peer connection sends for a kind ("audio" / "video").
  track(kind) {
    if (kind === "audio") return this.audio;
    return this.screen || (this.videoOn ? this.camera : null);
  }

  setAudio(on) {
    if (!this.audio) return false;
    this.audioOn = on;
    this.audio.enabled = on;
    this._changed();
    return true;
  }

  async setVideo(on) {
    if (on && !this.camera) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ video: true });
        this.camera = stream.getVideoTracks()[0];
      } catch (err) {
        this.error = err;
        return false;
      }
    }
    if (!on && this.camera) {
      this.camera.stop();
      this.camera = null;
    }
    this.videoOn = on;
    this._restream();
    return true;
  }

  get canShare() { return Boolean(navigator.mediaDevices?.getDisplayMedia); }

  async startScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    this.screen = stream.getVideoTracks()[0];
    // The browser's own "Stop sharing" button ends the track.
    this.screen.addEventListener("ended", () => this.stopScreen());
    this._restream();
  }

  stopScreen() {
    if (!this.screen) return;
    this.screen.stop();
    this.screen = null;
    this._restream();
  }

  _restream() {
    const tracks = [this.audio, this.track("video")].filter(Boolean);
    this.stream = new MediaStream(tracks);
    this._changed();
  }

  _changed() { this.dispatchEvent(new Event("change")); }

  stop() {
    for (const track of [this.audio, this.camera, this.screen]) track?.stop();
    this.audio = this.camera = this.screen = null;
  }
}
